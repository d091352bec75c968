"""3D views of per-residue importance (3Dmol.js): py3Dmol in notebooks, standalone HTML elsewhere.

A view is described once, as a PDB model plus a list of 3Dmol.js viewer
calls (``setStyle``, ``addStyle``, ``addCylinder``, ``setHoverable``...) whose
arguments are plain JSON. The same list drives a :class:`py3Dmol.view` in a
notebook and the standalone HTML page, so both show the same picture:

* the explained chain's cartoon coloured by importance (:class:`ColourScale`,
  with a colour bar), other chains and residues the importance does not
  cover in grey;
* the ``top_k`` most important residues as sticks (carbons in their
  importance colour);
* H-bond-network residues as sticks with pink carbons, their H-bonds dashed;
* hover labels with residue, sequence position, importance and energy.

The standalone page loads 3Dmol.js from its CDN (as py3Dmol does) or, given
a local ``3Dmol-min.js`` (e.g. from the npm package ``3dmol``), inlines it so
the file works offline. Every user-supplied string is escaped: HTML text
with :func:`html.escape`, data inside scripts as JSON with ``<``, ``>`` and
``&`` written as ``\\u`` escapes so nothing can close the script element.
"""

from __future__ import annotations

import html
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BackendUnavailableError, InputFileError, StructureError
from .io import atomic_write_text
from .predicted_fold import (
    _ONE_TO_THREE,
    PredictedFold,
    distogram_for,
    embed_distogram,
    fold_pdb_text,
    read_predictions,
)
from .structure_export import (
    NETWORK_COLOUR,
    OTHER_COLOUR,
    ColourScale,
    ResidueImportance,
    bfactor_atoms,
    cif_text,
    lay_importance,
    pdb_text,
    text_colour,
)
from .structures.compare import Importance, read_importance_tsv
from .structures.energies import EnergyTable, per_residue_energies
from .structures.hbnets import HBNetResult, find_hbond_networks
from .structures.io import BACKBONE_ATOMS, ResidueId, Structure

#: 3Dmol.js build that py3Dmol 2.5 loads; used when no local copy is given.
CDN_URL = "https://cdn.jsdelivr.net/npm/3dmol@2.5.5/build/3Dmol-min.js"
#: Height (px) of the standalone page's title bar; the viewer starts right below it.
HEADER_HEIGHT = 64
#: Left margin (px) of the viewer on the standalone page.
PAGE_MARGIN = 16

_HOVER_JS = (
    "function(atom, viewer) {"
    " if (atom.psLabel) { return; }"
    ' var ic = String(atom.icode || "").trim(); if (ic === "." || ic === "?") { ic = ""; }'
    ' var key = atom.chain + ":" + atom.resi + ":" + ic;'
    " var text = (%s)[key];"
    " if (text === undefined) { return; }"
    " atom.psLabel = viewer.addLabel(text, {position: {x: atom.x, y: atom.y, z: atom.z},"
    ' backgroundColor: "#222222", backgroundOpacity: 0.85, fontColor: "#ffffff", fontSize: 12,'
    " inFront: true});"
    "}"
)
_UNHOVER_JS = (
    "function(atom, viewer) { if (atom.psLabel) { viewer.removeLabel(atom.psLabel); delete atom.psLabel; }}"
)


def script_json(obj: Any) -> str:
    """JSON that is safe inside an HTML ``<script>`` element (no ``<``, ``>``, ``&`` characters)."""
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def inline_script(js: str) -> str:
    """JavaScript source made safe to place between ``<script>`` tags.

    ``</script`` and ``<!--`` can only occur inside string or regex literals of
    valid code, where ``<\\/`` and ``<\\!`` mean the same characters.
    """
    js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)
    return js.replace("<!--", "<\\!--")


def _escape_calls(js: str) -> str:
    """Escape ``<``, ``>``, ``&`` in py3Dmol call statements.

    The statements are ``viewer.method(JSON, ...)``: these characters can only
    occur inside JSON strings, where ``\\u`` escapes mean the same text.
    """
    return js.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def read_3dmol_js(path: str | os.PathLike) -> str:
    """Read a local 3Dmol.js build (e.g. ``node_modules/3dmol/build/3Dmol-min.js``).

    Raises
    ------
    InputFileError
        Missing, binary or non-3Dmol file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"3Dmol.js file not found: {p}")
    data = p.read_bytes()
    if b"\x00" in data[:65536]:
        raise InputFileError(f"{p} is a binary file, expected the 3Dmol.js JavaScript build")
    text = data.decode("utf-8", "replace")
    if "$3Dmol" not in text or "createViewer" not in text:
        raise InputFileError(f"{p} does not look like a 3Dmol.js build (no $3Dmol.createViewer)")
    return text


# ------------------------------------------------------------------ the view


@dataclass
class ResidueInfo:
    """What the view shows about one residue (also the report's table row)."""

    residue: ResidueId
    position: int | None
    importance: float | None
    energy: float | None
    network: int | None
    top: bool
    colour: str

    def label(self, energy_unit: str = "REU") -> str:
        """Hover text."""
        parts = [f"{self.residue.label} {self.residue.name}"]
        if self.position is not None:
            parts.append(f"position {self.position}")
        if self.importance is not None:
            parts.append(f"importance {self.importance:.3g}")
        if self.energy is not None and np.isfinite(self.energy):
            parts.append(f"energy {self.energy:.2f} {energy_unit}")
        if self.network is not None:
            parts.append(f"H-bond network {self.network}")
        return " | ".join(parts)


@dataclass
class ImportanceView:
    """A 3Dmol.js scene: a PDB model plus viewer calls, rendered by py3Dmol or as HTML.

    Attributes
    ----------
    model
        PDB text loaded into the viewer.
    calls
        ``(method, args)`` pairs applied to the 3Dmol viewer in order.
    scale
        Colour scale of the importance.
    title
        Title of the page (plain text; escaped when written).
    legend
        ``(colour, description)`` pairs explaining the markers.
    notes
        Things the reader should know (plain text).
    residues
        Per-residue information, in model order.
    rough_model
        True for a coarse model embedded from predicted distances.
    zoom
        3Dmol selection to zoom onto.
    model_format
        3Dmol format of ``model``: ``pdb``, or ``cif`` for chain names PDB cannot hold.
    """

    model: str
    calls: list[tuple[str, list[Any]]]
    scale: ColourScale
    title: str
    legend: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    residues: list[ResidueInfo] = field(default_factory=list)
    rough_model: bool = False
    zoom: dict[str, Any] = field(default_factory=dict)
    model_format: str = "pdb"

    # ----------------------------------------------------------- notebooks

    def to_py3dmol(self, width: int = 800, height: int = 560, js: str = CDN_URL, colour_bar: bool = True):
        """The view as a :class:`py3Dmol.view` (displays itself in Jupyter).

        Parameters
        ----------
        width, height
            Size in pixels.
        js
            URL of 3Dmol.js for the notebook to load.
        colour_bar
            Draw the colour bar as screen labels in the corner.
        """
        try:
            import py3Dmol
        except ImportError:
            raise BackendUnavailableError(
                "the notebook view needs py3Dmol (pip install 'protscramble[view]'); "
                "write_html() works without it"
            ) from None
        view = py3Dmol.view(width=width, height=height, js=js)
        # py3Dmol serialises arguments with plain json.dumps; escape what we add so a hostile
        # chain or residue name cannot close the notebook's <script> element
        start, update = len(view.startjs), len(view.updatejs)
        view.addModel(self.model, self.model_format)
        for method, args in self.calls + (self._colour_bar_labels() if colour_bar else []):
            getattr(view, method)(*args)
        view.zoomTo(self.zoom)
        view.startjs = view.startjs[:start] + _escape_calls(view.startjs[start:])
        view.updatejs = view.updatejs[:update] + _escape_calls(view.updatejs[update:])
        return view

    def _colour_bar_labels(self) -> list[tuple[str, list[Any]]]:
        calls: list[tuple[str, list[Any]]] = [
            ("addLabel", ["importance", _screen_label(8, 8, "#ffffff", "#000000")])
        ]
        for k, (value, colour) in enumerate(reversed(self.scale.stops(6))):
            calls.append(
                ("addLabel", [f"{value:.3g}", _screen_label(8, 30 + 20 * k, colour, text_colour(colour))])
            )
        if self.rough_model:
            calls.append(
                (
                    "addLabel",
                    ["ROUGH MODEL from predicted distances", _screen_label(90, 8, "#fff3cd", "#000000")],
                )
            )
        return calls

    # ---------------------------------------------------------------- HTML

    def script_data(self) -> str:
        """The scene as script-safe JSON (model, calls, zoom selection)."""
        return script_json(
            {"model": self.model, "format": self.model_format, "calls": self.calls, "zoom": self.zoom}
        )

    def html_fragment(self, element_id: str = "ps-viewer", width: int = 860, height: int = 520) -> str:
        """Viewer ``<div>``, colour bar, legend and the script that fills the viewer.

        The page must load 3Dmol.js before this fragment (see :meth:`to_html`).
        """
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", element_id):
            raise ValueError(f"element id {element_id!r} is not a plain identifier")
        runtime = (
            "(function () {\n"
            f"  var spec = {self.script_data()};\n"
            f'  var el = document.getElementById("{element_id}");\n'
            '  if (typeof $3Dmol === "undefined") {\n'
            '    el.textContent = "3Dmol.js could not be loaded: this page needs the internet, '
            'or write it with a local 3Dmol-min.js (--js) to view it offline.";\n'
            '    el.className += " ps-failed"; return;\n'
            "  }\n"
            '  var viewer = $3Dmol.createViewer(el, {backgroundColor: "white"});\n'
            "  viewer.addModel(spec.model, spec.format);\n"
            "  spec.calls.forEach(function (c) { viewer[c[0]].apply(viewer, c[1]); });\n"
            "  viewer.zoomTo(spec.zoom);\n"
            "  viewer.render();\n"
            '  el.setAttribute("data-rendered", "1");\n'
            "})();\n"
        )
        banner = (
            '<p class="ps-rough">Rough model: one point per residue embedded from trRosetta\'s expected '
            "distances (classical MDS + refinement). Topology only &mdash; not a structure prediction.</p>\n"
            if self.rough_model
            else ""
        )
        return (
            f"{banner}"
            f'<div id="{element_id}" class="ps-viewer" style="width: {int(width)}px; height: {int(height)}px;"></div>\n'
            f"{self.legend_html(width)}"
            f"<script>\n{runtime}</script>\n"
        )

    def legend_html(self, width: int = 860) -> str:
        """Colour bar with ticks, and the marker legend, as HTML."""
        stops = self.scale.stops(11)
        gradient = ", ".join(f"{c} {100 * k / (len(stops) - 1):.0f}%" for k, (_, c) in enumerate(stops))
        ticks = "".join(f"<span>{html.escape(f'{v:.3g}')}</span>" for v, _ in self.scale.stops(5))
        items = "".join(
            f'<li><span class="ps-swatch" style="background: {html.escape(c)}"></span>{html.escape(text)}</li>'
            for c, text in self.legend
        )
        return (
            f'<div class="ps-legend" style="width: {int(width)}px;">\n'
            f'<div class="ps-bar-title">importance ({html.escape(self.scale.cmap)})</div>\n'
            f'<div class="ps-bar" style="background: linear-gradient(to right, {gradient});"></div>\n'
            f'<div class="ps-ticks">{ticks}</div>\n'
            f'<ul class="ps-markers">{items}</ul>\n'
            "</div>\n"
        )

    def to_html(self, js: str | os.PathLike | None = None, width: int = 860, height: int = 520) -> str:
        """A standalone HTML page with the view.

        Parameters
        ----------
        js
            Local 3Dmol.js file to inline (the page then works offline); ``None``
            loads it from the CDN.
        width, height
            Viewer size in pixels.
        """
        loader = (
            f'<script src="{html.escape(CDN_URL)}"></script>'
            if js is None
            else f"<script>\n{inline_script(read_3dmol_js(js))}\n</script>"
        )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{PAGE_CSS}</style>\n{loader}\n</head>\n<body>\n"
            f'<header class="ps-header"><h1>{html.escape(self.title)}</h1></header>\n'
            f'<main class="ps-main">\n{self.html_fragment("ps-viewer", width, height)}'
            f'<ul class="ps-notes">{notes}</ul>\n</main>\n</body>\n</html>\n'
        )

    def write_html(self, path: str | os.PathLike, js: str | os.PathLike | None = None, **size: int) -> Path:
        """Write :meth:`to_html` atomically."""
        text = self.to_html(js, **size)
        atomic_write_text(path, text)
        return Path(path)


def _screen_label(x: int, y: int, background: str, colour: str) -> dict[str, Any]:
    return {
        "position": {"x": x, "y": y, "z": 0},
        "useScreen": True,
        "backgroundColor": background,
        "fontColor": colour,
        "fontSize": 11,
        "borderThickness": 0.5,
        "borderColor": "#888888",
    }


PAGE_CSS = f"""
body {{ margin: 0; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; }}
.ps-header {{ height: {HEADER_HEIGHT}px; box-sizing: border-box; padding: 0 {PAGE_MARGIN}px; overflow: hidden;
  display: flex; align-items: center; border-bottom: 1px solid #ddd; }}
.ps-header h1 {{ font-size: 20px; margin: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }}
.ps-main {{ padding: 0 {PAGE_MARGIN}px 16px {PAGE_MARGIN}px; }}
.ps-viewer {{ position: relative; border: 0; }}
.ps-failed {{ background: #fff3cd; padding: 1em; box-sizing: border-box; }}
.ps-rough {{ background: #fff3cd; border: 1px solid #e0c060; padding: 6px 10px; margin: 8px 0; }}
.ps-legend {{ margin-top: 8px; font-size: 13px; }}
.ps-bar {{ height: 14px; border: 1px solid #888; }}
.ps-ticks {{ display: flex; justify-content: space-between; font-size: 12px; }}
.ps-markers {{ list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 16px; }}
.ps-swatch {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px; border: 1px solid #888;
  vertical-align: middle; }}
.ps-notes {{ font-size: 12px; color: #555; }}
"""


# ----------------------------------------------------------------- builders


def _selection(residues: list[ResidueId], with_icode: bool) -> dict[str, Any]:
    """3Dmol selection of residues of one chain (and, when needed, one insertion code)."""
    sel: dict[str, Any] = {"chain": residues[0].chain, "resi": [r.number for r in residues]}
    if with_icode:
        sel["icode"] = residues[0].insertion_code or " "
    return sel


def _grouped_selections(residues: list[ResidueId], with_icode: bool) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[ResidueId]] = {}
    for r in residues:
        groups.setdefault((r.chain, r.insertion_code if with_icode else ""), []).append(r)
    return [_selection(g, with_icode) for g in groups.values()]


def _stick_calls(
    residues: list[ResidueId], atom_names: dict[tuple, list[str]], carbon: str, with_icode: bool
) -> list[tuple[str, list[Any]]]:
    """Side-chain sticks (plus CA) with ``carbon``-coloured carbons and element colours elsewhere."""
    calls: list[tuple[str, list[Any]]] = []
    for r in residues:
        names = atom_names.get(r.key, [])
        if not names:
            continue
        sel = {**_selection([r], with_icode), "atom": names}
        calls.append(("addStyle", [{**sel, "elem": "C"}, {"stick": {"color": carbon, "radius": 0.25}}]))
        calls.append(
            (
                "addStyle",
                [
                    {**sel, "elem": ["N", "O", "S", "SE"]},
                    {"stick": {"colorscheme": "default", "radius": 0.25}},
                ],
            )
        )
    return calls


def _hover_call(infos: list[ResidueInfo], energy_unit: str) -> tuple[str, list[Any]]:
    table = {
        f"{i.residue.chain}:{i.residue.number}:{i.residue.insertion_code}": i.label(energy_unit)
        for i in infos
    }
    return ("setHoverable", [{}, True, _HOVER_JS % script_json(table), _UNHOVER_JS])


def structure_view(
    laid: ResidueImportance,
    energies: EnergyTable | None = None,
    hbnets: HBNetResult | None = None,
    top_k: int = 10,
    scale: ColourScale | None = None,
    title: str | None = None,
) -> ImportanceView:
    """Importance of one chain on its structure.

    Parameters
    ----------
    laid
        Importance aligned onto the structure (:func:`~protscramble.structure_export.lay_importance`).
    energies
        Per-residue energies for the hover labels (any chains).
    hbnets
        H-bond networks to mark.
    top_k
        Residues shown as sticks.
    scale
        Colour scale (default: 0 to the maximum importance, viridis).
    title
        Page title (default: the structure file and chain).
    """
    scale = scale or ColourScale.from_values(laid.importance.values)
    atoms = bfactor_atoms(laid, hydrogens=False)  # sticks read better without hydrogens
    structure = laid.structure
    try:
        model, fmt = pdb_text(atoms), "pdb"
    except StructureError:  # chain names longer than PDB allows: mmCIF (3Dmol reads auth_asym_id)
        model, fmt = cif_text(atoms, "view"), "cif"
    # 3Dmol reads insertion codes from PDB files only (its mmCIF reader fills them with alt ids)
    with_icode = bool(np.any(atoms.ins_code != "")) and fmt == "pdb"
    position_of = {r.key: i + 1 for i, r in enumerate(laid.residues()) if r is not None}
    value_of = laid.by_residue()
    top = [r for r, _ in laid.top(top_k)]
    top_keys = {r.key for r in top}
    network_of = hbnets.network_of() if hbnets is not None else {}
    energy_of: dict[tuple, float] = {}
    if energies is not None:
        energy_of = {r.key: float(t) for r, t in zip(energies.residues, energies.total, strict=True)}

    side_chain: dict[tuple, list[str]] = {}
    for name, chain, number, icode in zip(
        atoms.atom_name, atoms.chain_id, atoms.res_id, atoms.ins_code, strict=True
    ):
        if name == "CA" or name not in BACKBONE_ATOMS:
            side_chain.setdefault((str(chain), int(number), str(icode)), []).append(str(name))

    infos = []
    for r in structure.residues:
        imp = value_of.get(r.key)
        infos.append(
            ResidueInfo(
                r, position_of.get(r.key), imp, energy_of.get(r.key), network_of.get(r.key),
                r.key in top_keys, scale.hex(imp) if imp is not None else OTHER_COLOUR,
            )
        )  # fmt: skip

    calls: list[tuple[str, list[Any]]] = [("setStyle", [{}, {"cartoon": {"color": OTHER_COLOUR}}])]
    by_colour: dict[str, list[ResidueId]] = {}
    for info in infos:
        if info.importance is not None:
            by_colour.setdefault(info.colour, []).append(info.residue)
    for colour, residues in by_colour.items():
        for sel in _grouped_selections(residues, with_icode):
            calls.append(("setStyle", [sel, {"cartoon": {"color": colour}}]))
    for r in top:
        calls += _stick_calls([r], side_chain, scale.hex(value_of[r.key]), with_icode)
    legend = [(scale.hex(scale.vmax), f"top {len(top)} residues: sticks"), (OTHER_COLOUR, "not explained")]
    notes = list(structure.notes)
    if hbnets is not None:
        members = sorted({r for net in hbnets.networks for r in net.residues})
        calls += _stick_calls(members, side_chain, NETWORK_COLOUR, with_icode)
        calls += _hbond_cylinders(hbnets, atoms)
        legend.append(
            (NETWORK_COLOUR, f"H-bond-network residues ({len(hbnets.networks)} networks), H-bonds dashed")
        )
        if not hbnets.networks:
            notes.append("no H-bond network found")
    unit = f"REU ({energies.score_function})" if energies is not None else "REU"
    calls.append(_hover_call(infos, unit))
    unresolved = laid.mapping.unresolved_positions
    if unresolved:
        notes.append(f"{len(unresolved)} sequence position(s) have no residue in the structure")
    if laid.mapping.mismatches:
        notes.append(
            f"{len(laid.mapping.mismatches)} position(s) differ between the sequence and the structure"
        )
    if energies is not None:
        notes.append(f"energies: {energies.backend} ({energies.score_function})")
    return ImportanceView(
        model=model,
        model_format=fmt,
        calls=calls,
        scale=scale,
        title=title or f"Importance on {structure.path.name}, chain {laid.chain}",
        legend=legend,
        notes=notes,
        residues=infos,
        zoom={},
    )


def _hbond_cylinders(hbnets: HBNetResult, atoms) -> list[tuple[str, list[Any]]]:
    where = {
        (str(c), int(n), str(i), str(a)): xyz
        for c, n, i, a, xyz in zip(
            atoms.chain_id, atoms.res_id, atoms.ins_code, atoms.atom_name, atoms.coord, strict=True
        )
    }
    calls: list[tuple[str, list[Any]]] = []
    for h in (h for net in hbnets.networks for h in net.hbonds):
        a, b = where.get((*h.donor.key, h.donor_atom)), where.get((*h.acceptor.key, h.acceptor_atom))
        if a is None or b is None:
            continue
        spec = {
            "start": dict(zip("xyz", (round(float(v), 3) for v in a), strict=True)),
            "end": dict(zip("xyz", (round(float(v), 3) for v in b), strict=True)),
            "radius": 0.08,
            "color": NETWORK_COLOUR,
            "dashed": True,
            "dashLength": 0.25,
            "gapLength": 0.2,
        }
        calls.append(("addCylinder", [spec]))
    return calls


def predicted_fold_view(
    importance: Importance,
    fold: PredictedFold,
    top_k: int = 10,
    scale: ColourScale | None = None,
    title: str | None = None,
) -> ImportanceView:
    """Importance on the rough model of the predicted fold (spheres on a Cα trace)."""
    if fold.length != len(importance.sequence):
        raise InputFileError(
            f"the predictions are for a protein of {fold.length} residues, "
            f"the importance for {len(importance.sequence)}"
        )
    scale = scale or ColourScale.from_values(importance.values)
    values = np.asarray(importance.values, dtype=float)
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))[: max(top_k, 0)]
    top = set(order)
    infos = []
    for i, (letter, v) in enumerate(zip(importance.sequence, values, strict=True)):
        residue = ResidueId("A", i + 1, "", _three(letter))
        infos.append(ResidueInfo(residue, i + 1, float(v), None, None, i in top, scale.hex(v)))
    calls: list[tuple[str, list[Any]]] = []
    by_colour: dict[tuple[str, bool], list[int]] = {}
    for info in infos:
        by_colour.setdefault((info.colour, info.top), []).append(info.residue.number)
    for (colour, is_top), numbers in by_colour.items():
        radius = 1.3 if is_top else 0.8
        calls.append(("setStyle", [{"resi": numbers}, {"sphere": {"color": colour, "radius": radius}}]))
    coords = fold.coords
    for i in range(fold.length - 1):
        mid = (coords[i] + coords[i + 1]) / 2
        for j, (a, b) in ((i, (coords[i], mid)), (i + 1, (mid, coords[i + 1]))):
            calls.append(
                ("addCylinder", [{
                    "start": dict(zip("xyz", (round(float(v), 3) for v in a), strict=True)),
                    "end": dict(zip("xyz", (round(float(v), 3) for v in b), strict=True)),
                    "radius": 0.35, "color": infos[j].colour,
                }])
            )  # fmt: skip
    calls.append(_hover_call(infos, "REU"))
    legend = [(scale.hex(scale.vmax), f"top {len(top)} residues: large spheres")]
    return ImportanceView(
        model=fold_pdb_text(fold, importance.sequence, values),
        calls=calls,
        scale=scale,
        title=title or "Importance on a rough model of the predicted fold",
        legend=legend,
        notes=list(fold.notes) + [f"fit RMSE to the expected distances: {fold.rmse:.2f} A"],
        residues=infos,
        rough_model=True,
        zoom={},
    )


def _three(letter: str) -> str:
    return _ONE_TO_THREE.get(letter.upper(), "UNK")


# --------------------------------------------------------------- convenience


def view_on_structure(
    laid: ResidueImportance,
    *,
    energy_backend: str | None = "auto",
    hbnets: bool | HBNetResult = True,
    interface: tuple[str, str] | None = None,
    top_k: int = 10,
    scale: ColourScale | None = None,
    title: str | None = None,
    device=None,
) -> tuple[ImportanceView, HBNetResult | None]:
    """:func:`structure_view` with energies and H-bond networks computed here.

    An unavailable energy backend becomes a note on the view. Returns the view
    and the networks it marks (for :func:`~protscramble.structure_export.pymol_script`).
    """
    notes: list[str] = []
    energies = None
    if energy_backend is not None:
        try:
            energies = per_residue_energies(laid.structure, backend=energy_backend, device=device)
        except BackendUnavailableError as err:
            notes.append(f"energies skipped: {err}")
    if isinstance(hbnets, HBNetResult):
        networks = hbnets
    elif hbnets:
        networks = find_hbond_networks(laid.structure, interface=interface)
    else:
        networks = None
    view = structure_view(laid, energies, networks, top_k=top_k, scale=scale, title=title)
    view.notes += notes
    return view, networks


def importance_view(
    importance: str | os.PathLike | Importance,
    structure: str | os.PathLike | Structure | None = None,
    chain: str | None = None,
    *,
    predictions: str | os.PathLike | dict | None = None,
    model: int = 1,
    energy_backend: str | None = "auto",
    hbnets: bool | HBNetResult = True,
    interface: tuple[str, str] | None = None,
    top_k: int = 10,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
    title: str | None = None,
    device=None,
) -> ImportanceView:
    """Build the 3D view of an importance vector on a structure or on the predicted fold.

    Parameters
    ----------
    importance
        ``importance.tsv`` path or :class:`Importance`.
    structure
        Structure file (or loaded structure). Give this or ``predictions``.
    chain
        Chain the importance refers to (default: the chain that matches).
    predictions
        ``predictions.npz`` path or a dict with ``dist`` (used when no structure):
        the view shows a rough model embedded from the predicted distances.
    model
        Model number when reading ``structure``.
    energy_backend
        Backend for the hover energies (``auto``, ``table``, ``tmol``,
        ``pyrosetta``) or ``None`` to skip; an unavailable backend becomes a note.
    hbnets
        Find and mark H-bond networks (``True``), skip them (``False``) or use these.
    interface
        ``("A", "B")``: mark only networks spanning the interface.
    top_k
        Residues shown as sticks.
    vmin, vmax, cmap
        Colour scale.
    title
        Page title.
    device
        Torch device for tmol.

    Examples
    --------
    >>> view = importance_view("out/importance.tsv", "design.pdb", "A")   # doctest: +SKIP
    >>> view.to_py3dmol()                                                  # doctest: +SKIP
    >>> view.write_html("view.html", js="3Dmol-min.js")                    # doctest: +SKIP
    """
    imp = importance if isinstance(importance, Importance) else read_importance_tsv(importance)
    scale = ColourScale.from_values(imp.values, vmin, vmax, cmap)
    if structure is None:
        if predictions is None:
            raise InputFileError("give a structure or trRosetta predictions (dist) to view the importance on")
        maps = predictions if isinstance(predictions, dict) else read_predictions(predictions)
        fold = embed_distogram(distogram_for(maps, imp.sequence))
        return predicted_fold_view(imp, fold, top_k=top_k, scale=scale, title=title)
    laid = lay_importance(imp, structure, chain, model=model)
    view, _ = view_on_structure(
        laid, energy_backend=energy_backend, hbnets=hbnets, interface=interface, top_k=top_k,
        scale=scale, title=title, device=device,
    )  # fmt: skip
    return view
