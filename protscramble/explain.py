"""Explain trRosetta predictions: the end-to-end workflow behind ``protscramble explain``.

>>> from protscramble.explain import explain_trrosetta        # doctest: +SKIP
>>> [res] = explain_trrosetta("MKVLAAGIEELLKKL", steps=50)    # doctest: +SKIP
>>> res.write("out/")                                         # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .alphabet import AMINO_ACIDS, one_hot, validate_sequence
from .backgrounds import make_background, user_background
from .errors import InvalidParameterError
from .evaluation import sampled_divergence, standard_error
from .explanation import Explanation
from .io import MSA, atomic_output_dir, atomic_write_json, atomic_write_text
from .objectives import prediction_kl
from .plotting import plot_importance, plot_logo
from .predictors.trrosetta import TrRosetta
from .scrambler import PerExampleScrambler, ScramblerSettings


@dataclass(frozen=True)
class Protein:
    """A protein to explain: a name, its sequence and optionally its alignment."""

    name: str
    sequence: str
    msa: MSA | None = None


def versions() -> dict[str, str]:
    """Versions of everything that shapes a result.

    The torch thread count is among them: a CPU sums in an order that depends on it, so an
    optimisation repeated with another count drifts apart (in bf16 within a few hundred updates).
    """
    return {
        "protscramble": __version__,
        "torch": torch.__version__,
        "torch_threads": str(torch.get_num_threads()),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` is empty on Linux)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device | str) -> str:
    """What a result was computed on: the GPU's name, or the CPU model and its core count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {os.cpu_count()} cores"


@dataclass
class ProteinExplanation:
    """Importance of one protein with its evaluation and full provenance."""

    name: str
    sequence: str
    explanation: Explanation
    eval_kl: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def importance(self) -> np.ndarray:
        return self.explanation.importance[0]

    @property
    def pssm(self) -> np.ndarray:
        assert self.explanation.pssm is not None
        return self.explanation.pssm[0]

    def summary(self) -> dict[str, Any]:
        bits = self.explanation.bits
        return {
            "name": self.name,
            "sequence": self.sequence,
            "length": len(self.sequence),
            "conservation_bits": None if bits is None else float(bits[0]),
            "eval_kl_mean": float(np.mean(self.eval_kl)),
            "eval_kl_median": float(np.median(self.eval_kl)),
            "eval_kl_sem": standard_error(self.eval_kl),
            "eval_samples": int(self.eval_kl.size),
            "final_divergence": float(self.explanation.trace["divergence"][-1, 0]),
            "settings": self.settings,
        }

    def write(self, out_dir: str | Path) -> Path:
        """Write importance.tsv, pssm.tsv, summary.json, importance.png, logo.png (atomically)."""
        alphabet = AMINO_ACIDS
        with atomic_output_dir(out_dir) as tmp:
            rows = ["position\tresidue\timportance"]
            rows += [
                f"{i + 1}\t{aa}\t{v:.6g}"
                for i, (aa, v) in enumerate(zip(self.sequence, self.importance, strict=True))
            ]
            atomic_write_text(tmp / "importance.tsv", "\n".join(rows) + "\n")
            head = "position\tresidue\t" + "\t".join(alphabet)
            lines = [head] + [
                f"{i + 1}\t{aa}\t" + "\t".join(f"{p:.6g}" for p in row)
                for i, (aa, row) in enumerate(zip(self.sequence, self.pssm, strict=True))
            ]
            atomic_write_text(tmp / "pssm.tsv", "\n".join(lines) + "\n")
            trace = self.explanation.trace
            atomic_write_text(
                tmp / "trace.tsv",
                "step\tloss\tdivergence\tbits\n"
                + "".join(
                    f"{s + 1}\t{trace['loss'][s, 0]:.6g}\t{trace['divergence'][s, 0]:.6g}\t{trace['bits'][s, 0]:.6g}\n"
                    for s in range(trace["loss"].shape[0])
                ),
            )
            atomic_write_json(tmp / "summary.json", self.summary())
            mode = self.settings.get("mode", "")
            title = f"{self.name} — {mode}, {self.summary()['conservation_bits']:.2f} bits"
            plot_importance(self.importance, self.sequence, tmp / "importance.png", title=title)
            plot_logo(self.pssm, alphabet, tmp / "logo.png", title=f"{self.name} — scrambled PSSM")
        return Path(out_dir)


def _as_proteins(proteins: str | Protein | Sequence[str | Protein]) -> list[Protein]:
    items = [proteins] if isinstance(proteins, str | Protein) else list(proteins)
    if not items:
        raise InvalidParameterError("no protein to explain")
    out = []
    for i, p in enumerate(items):
        if isinstance(p, str):
            p = Protein(f"seq{i + 1}" if len(items) > 1 else "query", p)
        seq = validate_sequence(p.sequence, AMINO_ACIDS, name=f"sequence {p.name!r}")
        if p.msa is not None and p.msa.query != seq:
            raise InvalidParameterError(f"sequence of {p.name!r} is not the query of its alignment")
        out.append(Protein(p.name, seq, p.msa))
    return out


def _background(
    spec: str | np.ndarray, protein: Protein, pseudocount: float, background_msa: MSA | None
) -> np.ndarray:
    length = len(protein.sequence)
    if isinstance(spec, str):
        return make_background(spec, length, protein.msa or background_msa, pseudocount)
    return user_background(spec, length)


def explain_trrosetta(
    proteins: str | Protein | Sequence[str | Protein],
    *,
    mode: str = "inclusion",
    target_bits: float = 1.0,
    background: str | np.ndarray = "native",
    pseudocount: float = 1.0,
    background_msa: MSA | None = None,
    use_msa_features: bool = True,
    scramble_msa: bool = False,
    models: str | Sequence[str] = "xaa",
    steps: int = 500,
    samples: int = 8,
    seed: int = 0,
    device: str | torch.device = "cpu",
    eval_samples: int = 128,
    predictor: TrRosetta | None = None,
    progress: bool = False,
    checkpoint_dir: str | os.PathLike | None = None,
    on_result: Callable[[ProteinExplanation], None] | None = None,
    **scrambler_settings: Any,
) -> list[ProteinExplanation]:
    """Per-example scrambling of trRosetta for one or more proteins.

    Proteins without alignment features that share a length are optimised
    together in one batch; proteins with an alignment run one by one (their
    predictor is conditioned on it).

    Parameters
    ----------
    proteins
        A sequence string, a :class:`Protein`, or a list of either.
    mode, target_bits
        Inclusion keeps the prediction, occlusion destroys it, at this many
        bits of conservation per position.
    background
        ``uniform``, ``native`` (PDB frequencies), ``msa`` (per-column
        frequencies of the protein's alignment, or ``background_msa``) with
        ``pseudocount``, or an (A,) / (L, A) array.
    use_msa_features
        Feed the alignment to trRosetta (profile and couplings); off keeps
        single-sequence features even when an alignment is given (it can
        still serve as the background).
    scramble_msa
        Scramble the alignment with the query, as the published with-MSA
        scrambler: each row is interpolated with the query's importance towards
        the alignment's gap-including column frequencies (``pseudocount``), and
        the profile and couplings are recomputed from every sampled alignment
        (the evaluation KL draws alignments too). Proteins without an alignment
        have nothing more to scramble.
    models
        trRosetta models, e.g. ``"xaa"`` or ``"all"``.
    steps, samples, seed, scrambler_settings
        Optimisation settings (see :class:`~protscramble.scrambler.ScramblerSettings`).
    eval_samples
        Sequences drawn from the final PSSM to report the evaluation KL.
    checkpoint_dir
        Folder for the optimisation checkpoints of each batch (every 25
        updates): a rerun with the same proteins and settings continues an
        interrupted batch where it stopped, with the same result. A batch's
        checkpoint is deleted once the batch is done (after ``on_result``).
    on_result
        Called with each protein's result as soon as its batch is done (e.g.
        to write it), so finished batches survive an interruption of later ones.
    """
    items = _as_proteins(proteins)
    if scramble_msa and not use_msa_features:
        raise InvalidParameterError("scrambling the alignment needs its features (use_msa_features)")
    if eval_samples < 1:
        raise InvalidParameterError(f"evaluation samples must be at least 1, got {eval_samples}")
    settings = ScramblerSettings(
        mode=mode, target_bits=target_bits, steps=steps, samples=samples, **scrambler_settings
    )
    settings.validate()
    dev = torch.device(device)
    base = predictor or TrRosetta(models, device=dev)

    groups: dict[tuple, list[Protein]] = defaultdict(list)
    for p in items:
        key = ("msa", p.name, id(p)) if (p.msa is not None and use_msa_features) else ("seq", len(p.sequence))
        groups[key].append(p)

    results: dict[str, ProteinExplanation] = {}
    for key, group in groups.items():
        t0 = time.perf_counter()
        length = len(group[0].sequence)
        if key[0] == "msa":
            pred = base.with_msa(group[0].msa, scramble_msa=scramble_msa, msa_pseudocount=pseudocount)
        else:
            pred = base.with_msa(None)
        pred.check_fits(length, samples * len(group), with_grad=True)
        max_batch = scrambler_settings.get("max_batch") or min(samples * len(group), pred.max_batch(length))
        run_settings = {**scrambler_settings, "max_batch": max_batch}
        scrambler = PerExampleScrambler(
            pred, mode=mode, target_bits=target_bits, steps=steps, samples=samples, **run_settings
        )
        x = torch.stack([one_hot(p.sequence) for p in group]).to(dev)
        bg = torch.tensor(
            np.stack([_background(background, p, pseudocount, background_msa) for p in group]),
            dtype=torch.float32,
            device=dev,
        )
        with torch.no_grad():
            reference = {k: v.float() for k, v in pred(x).items()}
        ckpt = None
        if checkpoint_dir is not None:
            ident = "\n".join(f"{p.name}\t{p.sequence}" for p in group).encode()
            ckpt = Path(checkpoint_dir) / f"{hashlib.sha1(ident).hexdigest()[:16]}.ckpt"
        exp = scrambler.attribute(x, bg, reference=reference, seed=seed, progress=progress, checkpoint=ckpt)
        kl = sampled_divergence(
            pred,
            reference,
            torch.tensor(exp.pssm, device=dev),
            eval_samples,
            seed=seed + 1,
            divergence=prediction_kl,
            scores=torch.tensor(exp.importance, device=dev),
            mode=mode,
        )
        wall = time.perf_counter() - t0
        for i, p in enumerate(group):
            results[id(p)] = ProteinExplanation(
                name=p.name,
                sequence=p.sequence,
                explanation=exp[i],
                eval_kl=kl[i],
                settings={
                    **exp.settings,
                    "predictor": "trRosetta",
                    "models": list(base.models),
                    "precision": base.precision,
                    "compiled": base.compile,
                    "msa_features": key[0] == "msa",
                    "scramble_msa": scramble_msa and key[0] == "msa",
                    "msa_depth": None if p.msa is None else p.msa.depth,
                    "background": background if isinstance(background, str) else "user",
                    "pseudocount": pseudocount,
                    "eval_samples": eval_samples,
                    "batch_size": len(group),
                    "device": str(dev),
                    "device_name": device_name(dev),
                    "wall_seconds": wall,
                    "versions": versions(),
                },
            )
            if on_result is not None:
                on_result(results[id(p)])
        if ckpt is not None:
            ckpt.unlink(missing_ok=True)
    return [results[id(p)] for p in items]


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
#: Settings added after results were first written, with the value older results had implicitly.
LATER_DEFAULTS: dict[str, Any] = {"scramble_msa": False, "clip_value": None, "accumulation_steps": 1}


def safe_name(name: str) -> str:
    """A folder name derived from a FASTA name (first word, unsafe characters replaced)."""
    word = name.split()[0] if name.split() else "protein"
    return _SAFE.sub("_", word).strip("._") or "protein"


def settings_match(summary_path: Path, settings: dict[str, Any]) -> bool:
    """Whether a finished result was made with the same (non-timing) settings."""
    try:
        old = json.loads(summary_path.read_text())["settings"]
    except (OSError, ValueError, KeyError):
        return False
    ignore = {"wall_seconds", "optimisation_seconds", "versions", "batch_size", "device_name"}
    return all(old.get(k, LATER_DEFAULTS.get(k)) == v for k, v in settings.items() if k not in ignore)
