"""A real browser opens the offline HTML view: headless Chromium, WebGL through SwiftShader.

Needs Debian's ``chromium`` and a local 3Dmol.js build named by the environment
variable ``PROTSCRAMBLE_3DMOL_JS`` (``.ci/run`` installs the npm package ``3dmol``
and sets it); skips with the reason when either is missing.
"""

from __future__ import annotations

import colorsys
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_file

from protscramble.viewer import HEADER_HEIGHT, PAGE_MARGIN, importance_view

WINDOW = (900, 700)
VIEWER = (860, 520)


def chromium() -> str:
    for name in (
        os.environ.get("PROTSCRAMBLE_CHROMIUM"),
        "chromium",
        "/usr/bin/chromium",
        "chromium-browser",
    ):
        if name and (path := shutil.which(name)):
            return path
    pytest.skip("headless Chromium is not installed (Debian package 'chromium'; .ci/run installs it)")


def threedmol_js() -> Path:
    value = os.environ.get("PROTSCRAMBLE_3DMOL_JS")
    if not value or not Path(value).is_file():
        pytest.skip(
            "no local 3Dmol.js: set PROTSCRAMBLE_3DMOL_JS to node_modules/3dmol/build/3Dmol-min.js "
            "(npm install 3dmol; .ci/run does this)"
        )
    return Path(value)


def screenshot(page: Path, tmp_path: Path) -> np.ndarray:
    """Render ``page`` with headless Chromium (software WebGL) and return the RGB pixels."""
    from PIL import Image

    png = tmp_path / f"{page.stem}.png"
    cmd = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--use-gl=swiftshader", "--enable-unsafe-swiftshader",
        f"--screenshot={png}", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--virtual-time-budget=15000",
        page.resolve().as_uri(),
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert png.is_file(), f"Chromium wrote no screenshot (exit {run.returncode}): {run.stderr[-2000:]}"
    with Image.open(png) as im:
        return np.asarray(im.convert("RGB"), dtype=float) / 255.0


def hsv(pixels: np.ndarray) -> np.ndarray:
    flat = pixels.reshape(-1, 3)
    return np.array([colorsys.rgb_to_hsv(*p) for p in flat])


def test_webgl_renders_under_swiftshader(tmp_path):
    page = tmp_path / "webgl.html"
    page.write_text(
        "<!DOCTYPE html><html><body style='margin:0;background:#0000ff'>"
        "<canvas id='c' width='300' height='200'></canvas><script>"
        "var gl = document.getElementById('c').getContext('webgl');"
        "if (gl) { gl.clearColor(1, 0, 0, 1); gl.clear(gl.COLOR_BUFFER_BIT); }"
        "else { document.body.style.background = '#00ff00'; }"
        "</script></body></html>"
    )
    pixels = screenshot(page, tmp_path)
    centre = pixels[100, 150]
    assert not np.allclose(centre, [0, 1, 0], atol=0.1), "WebGL is unavailable in headless Chromium"
    assert np.allclose(centre, [1, 0, 0], atol=0.05), f"the WebGL canvas did not render red: {centre}"


def test_offline_view_shows_importance_colours(tmp_path):
    js = threedmol_js()
    pdb = shared_file("structures", "designed", "pdl1_binders", "pd1_r1_10_r2_1.pdb")
    from protscramble.structures import load_structure
    from protscramble.structures.compare import Importance

    structure = load_structure(pdb)
    seq = structure.sequence("A")
    view = importance_view(Importance(seq, np.linspace(0, 1, len(seq))), structure, "A", energy_backend=None)
    page = view.write_html(tmp_path / "view.html", js=js, width=VIEWER[0], height=VIEWER[1])
    assert "cdn.jsdelivr" not in page.read_text()
    pixels = screenshot(page, tmp_path)
    # only the WebGL canvas (the colour bar below it is plain HTML and must not count)
    top, left = HEADER_HEIGHT + 4, PAGE_MARGIN + 4
    region = pixels[top : HEADER_HEIGHT + VIEWER[1] - 4, left : PAGE_MARGIN + VIEWER[0] - 4]
    drawn = np.any(np.abs(region - 1.0) > 0.06, axis=-1)  # white background
    assert drawn.mean() > 0.02, f"the viewer is blank ({drawn.mean():.1%} of it drawn): WebGL did not render"
    colours = hsv(region[drawn][::3])
    hue, sat, val = colours[:, 0] * 360, colours[:, 1], colours[:, 2]
    saturated = (sat > 0.35) & (val > 0.15)
    n = len(colours)
    # viridis from dark purple through teal to yellow along the explained chain (shading keeps hue)
    for name, (lo, hi) in {"purple/blue": (230, 300), "teal/green": (140, 200), "yellow": (45, 75)}.items():
        share = np.mean(saturated & (hue >= lo) & (hue <= hi))
        assert share > 0.005, f"no {name} importance colour on the structure ({share:.2%} of drawn pixels)"
    grey = np.mean((sat < 0.08) & (val > 0.25) & (val < 0.95))
    assert grey > 0.05, f"the partner chain (grey) is missing ({grey:.1%})"
    assert n > 1000
