"""Draw kept faithfulness curves again with the current code and compare them point by point.

A change that touches how curves are computed (batch shapes, chunking, kernels)
but not their draws must give the curves a benchmark run kept. This script copies
the cached results of ``--methods`` on ``--protein`` from a kept results folder
(``method_cache/PROTEIN/METHOD.json``: importance and curves) into a scratch
folder, drops their curves, lets ``protscramble benchmark trrosetta`` draw them
again under the kept settings (the importance is reused as it is), and prints
each (method, mode, fraction) point kept and now, the largest absolute and
relative difference, the areas, and the seconds the curves took.

    python benchmarks/curve_recheck.py benchmarks/results/2026-12-06/published_t1001_occlusion \\
        --protein T1001 --methods random [--protocol published] [--precision auto] [--work DIR]

The kept run's protocol name and precision are given as they were run (the cached
settings must match, or the runner recomputes the importance and the script stops).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from protscramble.benchmark.metrics import curve_auc


def curves(entry: dict) -> dict[tuple[str, float], float]:
    return {(r["mode"], float(r["fraction"])): float(r["kl"]) for r in entry["faithfulness"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kept", type=Path, help="a benchmark results folder with method_cache/")
    ap.add_argument("--protein", required=True)
    ap.add_argument("--methods", nargs="+", required=True)
    ap.add_argument("--protocol", default="published")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed after)")
    args = ap.parse_args()
    src = args.kept / "method_cache" / args.protein
    work = args.work or Path(tempfile.mkdtemp(prefix="curve_recheck_"))
    dst = work / "method_cache" / args.protein
    dst.mkdir(parents=True, exist_ok=True)
    kept = {}
    for m in args.methods:
        entry = json.loads((src / f"{m}.json").read_text())
        kept[m] = curves(entry)
        entry.pop("faithfulness")
        (dst / f"{m}.json").write_text(json.dumps(entry))
    cmd = [
        sys.executable, "-m", "protscramble.cli", "benchmark", "trrosetta", "--proteins", args.protein,
        "--protocol", args.protocol, "--precision", args.precision, "--device", "cpu",
        "--methods", *args.methods, "--no-figures", "--out", str(work),
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    print(f"# {args.protein}, {', '.join(args.methods)}: benchmark run {wall:.0f} s (curves and summary)")
    print("method\tmode\tfraction\tkept\tnow\tabs_diff")
    worst_abs = worst_rel = 0.0
    for m in args.methods:
        entry = json.loads((dst / f"{m}.json").read_text())
        if entry.get("seconds") != json.loads((src / f"{m}.json").read_text()).get("seconds"):
            sys.exit(
                f"{m}: the importance was recomputed (settings differ from the kept run's); not a recheck"
            )
        now = curves(entry)
        for key in sorted(kept[m]):
            a, b = kept[m][key], now[key]
            worst_abs, worst_rel = max(worst_abs, abs(a - b)), max(worst_rel, abs(a - b) / abs(a))
            print(f"{m}\t{key[0]}\t{key[1]}\t{a:.6f}\t{b:.6f}\t{abs(a - b):.2e}")
        for mode in ("inclusion", "occlusion"):
            pts = sorted((f, v) for (md, f), v in kept[m].items() if md == mode)
            new = sorted((f, v) for (md, f), v in now.items() if md == mode)
            fr = [f for f, _ in pts]
            print(
                f"# {m} {mode} area: kept {curve_auc(fr, [v for _, v in pts]):.6f}, "
                f"now {curve_auc(fr, [v for _, v in new]):.6f}"
            )
        print(f"# {m} curves: {entry['faithfulness_seconds']:.0f} s now")
    print(f"max_abs_diff: {worst_abs:.3e}\nmax_rel_diff: {worst_rel:.3e}")
    if args.work is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
