"""Benchmark metrics: faithfulness curves and their areas, structure agreement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..errors import InvalidParameterError
from ..faithfulness import evaluate_faithfulness
from ..predictors.base import Predictor

#: Start of the note left when the alanine scan's backend (tmol) is missing; such a protein is
#: finished again, reusing its cached methods, by a rerun where tmol is installed.
DDG_SKIPPED = "ddG skipped"


def ddg_available() -> bool:
    """Whether the alanine scan's backend (tmol) is installed here."""
    from ..structures._tmol import tmol_available

    return tmol_available()


def curve_auc(fractions: Sequence[float], values: Sequence[float]) -> float:
    """Trapezoidal area under a faithfulness curve (KL against kept/resampled fraction).

    Examples
    --------
    >>> curve_auc([0.1, 0.2, 0.3], [1.0, 2.0, 4.0])
    0.45
    """
    f = np.asarray(fractions, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if f.shape != v.shape or f.ndim != 1 or f.size < 2:
        raise InvalidParameterError("an area needs at least two (fraction, value) points of equal count")
    if np.any(np.diff(f) <= 0):
        raise InvalidParameterError("fractions must be strictly increasing")
    return float(np.round(np.sum((v[1:] + v[:-1]) * np.diff(f)) / 2.0, 12))


def faithfulness_rows(
    predictor: Predictor,
    x: torch.Tensor,
    importances: Mapping[str, np.ndarray],
    background: torch.Tensor,
    reference: Mapping[str, torch.Tensor],
    fractions: Sequence[float],
    n_samples: int,
    seed: int,
    modes: Sequence[str] = ("inclusion", "occlusion"),
) -> list[dict[str, Any]]:
    """One row per (method, mode, fraction): mean forward KL of the four maps over the samples."""
    rows = []
    for method, imp in importances.items():
        res = evaluate_faithfulness(
            predictor,
            x,
            torch.as_tensor(imp, dtype=torch.float32).unsqueeze(0),
            background,
            fractions=fractions,
            modes=modes,
            n_samples=n_samples,
            reference=reference,
            seed=seed,
            batch_size=8,
        )
        for (mode, frac), kl in res.items():
            rows.append({"method": method, "mode": mode, "fraction": frac, "kl": float(kl[0])})
    return rows


#: Held-out draws (restart selection) are seeded at the run's seed plus this offset, so they never repeat the
#: draws of the curves that judge the kept ranking (seeded at the run's seed, ``evaluate_faithfulness``).
HELDOUT_SEED_OFFSET = 1_000_000


def heldout_occlusion_area(
    predictor: Predictor,
    x: torch.Tensor,
    importance: np.ndarray,
    background: torch.Tensor,
    reference: Mapping[str, torch.Tensor],
    fractions: Sequence[float],
    n_samples: int,
    seed: int,
) -> float:
    """The occlusion area of ``importance`` under held-out draws (``seed + HELDOUT_SEED_OFFSET``).

    What ``occlusion_restart_select="heldout"`` ranks restarts by: the curve the benchmark reports, at
    fewer samples and on draws the reported curves never use, so choosing by it is a validation-set choice,
    not a choice on the test draws.
    """
    rows = faithfulness_rows(
        predictor, x, {"r": importance}, background, reference, fractions, n_samples,
        seed + HELDOUT_SEED_OFFSET, modes=("occlusion",),
    )  # fmt: skip
    return curve_auc(fractions, [r["kl"] for r in rows])


def auc_rows(faithfulness: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Area under each (method, mode) curve from :func:`faithfulness_rows` output."""
    curves: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in faithfulness:
        curves.setdefault((r["method"], r["mode"]), []).append((float(r["fraction"]), float(r["kl"])))
    out = []
    for (method, mode), pts in curves.items():
        pts.sort()
        out.append({"method": method, "mode": mode, "auc": curve_auc(*zip(*pts, strict=True))})
    return out


def structure_rows(
    importances: Mapping[str, np.ndarray],
    sequence: str,
    structure: str,
    chain: str,
    top_k: int,
    n_permutations: int,
    seed: int,
    compute_ddg: bool = True,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Spearman with ref2015 total/terms, top-k ddG and H-bond-network AP, each with its p-value.

    Uses :func:`~protscramble.structures.compare_importance_with_structure`
    (energies from the PDB's ref2015 table). The alanine scan of the binder
    monomer runs once for all methods (``compute_ddg``); it is skipped with a
    note when its backend is unavailable.
    """
    from ..errors import BackendUnavailableError
    from ..structures import Importance, alanine_scan, compare_importance_with_structure, load_structure

    struct = load_structure(structure)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    ddg = None
    if compute_ddg:
        try:
            ddg = alanine_scan(struct, chains=[chain])
        except BackendUnavailableError as err:
            notes.append(f"{DDG_SKIPPED}: {err}")
    for method, imp in importances.items():
        res = compare_importance_with_structure(
            Importance(sequence, np.asarray(imp, dtype=np.float64), method),
            struct,
            chain,
            energy_backend="table",
            ddg=ddg,
            compute_ddg=False,
            top_k=top_k,
            n_permutations=n_permutations,
            seed=seed,
        )
        notes += [n for n in res.notes if n not in notes]
        sp = res.stats["spearman"]
        rows.append(
            {
                "method": method,
                "metric": "spearman_total",
                "value": sp["total"]["rho"],
                "p_value": sp["total"]["p_value"],
            }
        )
        rows.append(
            {
                "method": method,
                "metric": "spearman_abs_total",
                "value": sp["abs_total"]["rho"],
                "p_value": sp["abs_total"]["p_value"],
            }
        )
        for term, r in sp["terms"].items():
            rows.append(
                {"method": method, "metric": f"spearman_{term}", "value": r["rho"], "p_value": r["p_value"]}
            )
        if "topk_ddg" in res.stats:
            t = res.stats["topk_ddg"]
            rows.append(
                {
                    "method": method,
                    "metric": f"top{t['k']}_ddg_difference",
                    "value": t["difference"],
                    "p_value": t["p_value"],
                }
            )
        ap, p = _ap_permutation_test(
            res.importance.values, res.in_network, res.residues, n_permutations, seed
        )
        rows.append({"method": method, "metric": "hbnet_average_precision", "value": ap, "p_value": p})
    return rows, notes


def _ap_permutation_test(
    importance: np.ndarray,
    in_network: np.ndarray | None,
    residues: Sequence[Any],
    n_permutations: int,
    seed: int,
) -> tuple[float | None, float | None]:
    """Average precision of importance for H-bond-network residues and its one-sided permutation p-value."""
    from ..structures import average_precision

    if in_network is None:
        return None, None
    mapped = np.array([r is not None for r in residues]) & np.isfinite(importance)
    imp, lab = np.asarray(importance, dtype=np.float64)[mapped], np.asarray(in_network, dtype=bool)[mapped]
    if not lab.any() or lab.all():
        return None, None
    observed = average_precision(imp, lab)
    rng = np.random.default_rng(seed)
    hits = sum(
        average_precision(rng.permutation(imp), lab) >= observed - 1e-12 for _ in range(n_permutations)
    )
    return observed, (hits + 1) / (n_permutations + 1)
