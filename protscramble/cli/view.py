"""``protscramble view``: importance on a 3D structure (or a rough model of the predicted fold) as HTML."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputFileError
from ..io import atomic_write_text
from ..structures.energies import BACKENDS
from ..structures.io import parse_interface
from .common import add_device_argument, positive_int, resolve_device
from .energies import report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "view",
        help="3D view of importance (standalone HTML; B-factor PDB/mmCIF and a PyMOL script alongside)",
    )
    p.add_argument("--importance", required=True, help="importance.tsv written by protscramble explain")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--structure", help="PDB or mmCIF file to colour")
    src.add_argument(
        "--predicted",
        help="predictions.npz (protscramble predict): show a rough model embedded from the predicted distances",
    )
    p.add_argument("--chain", help="chain the importance refers to (default: the chain that matches)")
    p.add_argument("--model", type=positive_int, default=1, help="model to read (default 1)")
    p.add_argument("--js", help="local 3Dmol-min.js to inline, so the page works offline (default: CDN)")
    p.add_argument(
        "--energy-backend",
        choices=[*BACKENDS, "none"],
        default="auto",
        help="per-residue energies for the hover labels (default auto; none to skip)",
    )
    p.add_argument("--interface", help="A_B: mark only H-bond networks spanning this interface")
    p.add_argument("--no-hbnets", action="store_true", help="do not look for H-bond networks")
    p.add_argument("--top-k", type=positive_int, default=10, help="residues shown as sticks (default 10)")
    p.add_argument("--vmin", type=float, help="importance at the bottom of the colour map (default 0)")
    p.add_argument("--vmax", type=float, help="importance at the top of the colour map (default: maximum)")
    p.add_argument("--cmap", default="viridis", help="matplotlib colour map (default viridis)")
    p.add_argument(
        "--no-export",
        action="store_true",
        help="write only the HTML (default: also OUT-stem .pdb/.cif with importance as B-factors and .pml)",
    )
    add_device_argument(p)
    p.add_argument("--out", required=True, help="output HTML file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..predicted_fold import distogram_for, embed_distogram, read_predictions
    from ..structure_export import ColourScale, importance_structure_files, lay_importance
    from ..structures.compare import read_importance_tsv
    from ..viewer import predicted_fold_view, read_3dmol_js, view_on_structure

    out = Path(args.out)
    if out.is_dir():
        raise InputFileError(f"--out must be a file path, {out} is a folder")
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputFileError(f"--out must end in .html, got {out.name}")
    if args.js is not None:
        read_3dmol_js(args.js)  # a bad --js fails before any work
    interface = parse_interface(args.interface) if args.interface else None
    importance = read_importance_tsv(args.importance)
    scale = ColourScale.from_values(importance.values, args.vmin, args.vmax, args.cmap)
    files: dict[str, str] = {}
    if args.structure:
        laid = lay_importance(importance, args.structure, args.chain, model=args.model)
        view, hbnets = view_on_structure(
            laid,
            energy_backend=None if args.energy_backend == "none" else args.energy_backend,
            hbnets=not args.no_hbnets,
            interface=interface,
            top_k=args.top_k,
            scale=scale,
            device=resolve_device(args.device),
        )
        if not args.no_export:
            files = importance_structure_files(
                laid, out.stem, scale, top_k=args.top_k, hbnets=hbnets, notes=view.notes
            )
    else:
        maps = read_predictions(args.predicted)
        fold = embed_distogram(distogram_for(maps, importance.sequence))
        view = predicted_fold_view(importance, fold, top_k=args.top_k, scale=scale)
        if not args.no_export:
            files = {f"{out.stem}_rough_model.pdb": view.model}
    page = view.to_html(args.js)
    # everything is rendered before anything is written; the page goes last
    for name, text in files.items():
        atomic_write_text(out.with_name(name), text)
    atomic_write_text(out, page)
    also = f" (and {', '.join(files)})" if files else ""
    report("view", f"wrote {out}{also}", view.notes)
    return 0
