"""Publication figures: panels, files (vector PDF + PNG), statistics shown, secondary structure."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import shared_file
from scipy.stats import spearmanr

from protscramble.errors import InvalidParameterError
from protscramble.figures import (
    distogram_figure,
    logo_figure,
    mean_distance,
    pairwise_kl,
    save_figure,
    scatter_figure,
    secondary_structure,
    track_figure,
)
from protscramble.predicted_fold import distogram_from_distances
from protscramble.structures import load_structure, map_sequence_to_structure

SEQ = "MKVLAAGIEELLKKLGEEARRLAEKG"


def gids(fig) -> list[str | None]:
    return [ax.get_gid() for ax in fig.axes]


def blurred_distogram(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coords = rng.normal(scale=6.0, size=(n, 3))
    d = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    return 0.9 * distogram_from_distances(d) + rng.dirichlet(np.ones(37), size=(n, n)) * 0.1


def test_track_figure_panels():
    n = len(SEQ)
    full = track_figure(
        np.linspace(0, 1, n), SEQ, energy=np.linspace(-3, 2, n), sse="a" * 10 + "c" * 6 + "b" * 10,
        in_network=np.arange(n) % 7 == 0, title="t",
    )  # fmt: skip
    assert gids(full) == ["sse", "importance", "energy"]
    bare = track_figure(np.linspace(0, 1, n), SEQ)
    assert gids(bare) == ["importance"]
    with pytest.raises(InvalidParameterError, match="energy has 3 entries"):
        track_figure(np.ones(n), SEQ, energy=np.ones(3))
    with pytest.raises(InvalidParameterError, match="importance values"):
        track_figure(np.ones(3), SEQ)


def test_saved_figures_are_vector_pdf_and_png(tmp_path):
    fig = track_figure(np.linspace(0, 1, len(SEQ)), SEQ, energy=np.zeros(len(SEQ)))
    pdf, png = save_figure(fig, tmp_path / "tracks")
    assert pdf.name == "tracks.pdf" and png.name == "tracks.png"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and b"/Subtype /Image" not in data  # bars are paths, not pixels
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    from PIL import Image

    with Image.open(png) as im:
        assert im.width > 1000 and im.height > 400


def test_logo_figure():
    rng = np.random.default_rng(0)
    fig = logo_figure(rng.dirichlet(np.ones(20) * 0.2, size=12), title="logo")
    assert gids(fig) == ["logo"]
    assert len(fig.axes[0].patches) >= 12 * 20  # one glyph per letter and position
    with pytest.raises(InvalidParameterError, match="PSSM must be"):
        logo_figure(np.ones((5, 19)) / 19)


def test_distogram_figure_panels_and_kl():
    original, scrambled = blurred_distogram(15, 0), blurred_distogram(15, 1)
    fig = distogram_figure(original, scrambled)
    assert gids(fig) == ["distogram", "distogram", "kl", None, None]  # three images, two colour bars
    kl = pairwise_kl(original, scrambled)
    off = ~np.eye(15, dtype=bool)
    title = fig.axes[2].get_title()
    assert f"mean {kl[off].mean():.2f} nats" in title
    assert np.allclose(pairwise_kl(original, original), 0.0, atol=1e-9)
    d = mean_distance(original)
    assert np.all(np.isnan(np.diag(d))) and np.nanmax(d) <= 20.0 and np.nanmin(d) >= 2.0


def test_scatter_figure_reports_spearman():
    rng = np.random.default_rng(3)
    energy = rng.normal(size=40)
    importance = np.abs(energy) + rng.normal(scale=0.5, size=40)
    energy[5] = np.nan  # an unresolved residue is left out
    fig = scatter_figure(importance, energy, n_permutations=500)
    assert gids(fig) == ["scatter", "scatter"]
    ok = np.isfinite(energy)
    for ax, x in zip(fig.axes, (energy, np.abs(energy)), strict=True):
        rho = spearmanr(importance[ok], x[ok]).statistic
        shown = float(re.search(r"ρ = (-?[\d.]+)", ax.get_title()).group(1))
        assert shown == pytest.approx(rho, abs=5e-4)
        assert "n = 39" in ax.get_title()


def test_secondary_structure_of_top7():
    structure = load_structure(shared_file("structures", "designed", "top7", "1QYS.pdb"))
    resolved = structure.sequence("A")
    sequence = "MG" + resolved  # two leading residues the crystal does not resolve
    sse = secondary_structure(structure, map_sequence_to_structure(sequence, structure, "A"))
    assert len(sse) == len(sequence) and sse[:2] == "--"
    helices = re.findall(r"a{8,}", sse)
    strands = re.findall(r"b{4,}", sse)
    assert len(helices) == 2 and len(strands) == 5  # Top7: two helices packed on a five-stranded sheet
