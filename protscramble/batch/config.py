"""Shared settings of a batch: a TOML or JSON file with three sections.

``[explain]``
    Every option of ``protscramble explain`` except the input, ``--device``,
    ``--quiet`` and ``--out``, named without the leading dashes (dashes or
    underscores), with the same defaults and checks: ``steps = 50``,
    ``target-bits = 1.5``, ``no_msa_features = true``... The definitions are
    taken from :func:`protscramble.cli.explain.add_scrambler_arguments`, so
    the two commands cannot drift apart.
``[compare]``
    Comparison with the design model (rows with a ``structure``): ``enabled``
    (true), ``backend`` (auto), ``interface`` (``A_B``, overridden by the
    manifest column), ``alanine_scan`` (false: minutes per design with tmol),
    ``hbnet_backend`` (geometric), ``top_k`` (10), ``permutations`` (10000),
    ``seed`` (0), ``model`` (1).
``[batch]``
    ``bucket_size`` (8): most equal-length designs optimised together;
    ``memory_gib`` (8): memory budget per worker that sizes network calls;
    ``cpu_threads`` (1): torch threads per CPU worker.

Unknown sections or keys are errors (with the closest known name), so a typo
never silently falls back to a default. Relative paths (``background``
``.npy``, ``background_a3m``, ``weights``) are resolved against the config
file's folder.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..backgrounds import BACKGROUND_KINDS
from ..errors import InputFileError, InvalidParameterError, ProtscrambleError
from ..explain import LATER_DEFAULTS
from ..io import MSA, read_a3m
from ..scrambler import ScramblerSettings
from ..structures.energies import BACKENDS
from ..structures.hbnets import HBNET_BACKENDS
from ..structures.io import parse_interface

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: ``explain`` options that are not shared settings (per run or per design).
_NOT_CONFIG = {"device", "quiet", "help"}
#: Explain keys that do not change results (left out of the settings hash).
_EXECUTION_KEYS = {"weights", "max_batch"}


def _explain_actions() -> dict[str, argparse.Action]:
    from ..cli.explain import add_scrambler_arguments

    parser = argparse.ArgumentParser(add_help=False)
    add_scrambler_arguments(parser)
    return {a.dest: a for a in parser._actions if a.dest not in _NOT_CONFIG}


def explain_defaults() -> dict[str, Any]:
    """Defaults of the ``[explain]`` section (those of ``protscramble explain``)."""
    return {k: a.default for k, a in _explain_actions().items()}


@dataclass(frozen=True)
class CompareSettings:
    """Options of the comparison with a design's model."""

    enabled: bool = True
    backend: str = "auto"
    interface: str | None = None
    alanine_scan: bool = False
    hbnet_backend: str = "geometric"
    top_k: int = 10
    permutations: int = 10_000
    seed: int = 0
    model: int = 1

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidParameterError(f"[compare] backend must be one of {', '.join(BACKENDS)}")
        if self.hbnet_backend not in HBNET_BACKENDS:
            raise InvalidParameterError(f"[compare] hbnet_backend must be one of {', '.join(HBNET_BACKENDS)}")
        if self.interface is not None:
            parse_interface(self.interface)
        for name in ("top_k", "permutations", "model"):
            if getattr(self, name) < 1:
                raise InvalidParameterError(f"[compare] {name} must be at least 1")


@dataclass(frozen=True)
class BatchSettings:
    """How designs are grouped and run (bucket_size shapes results; the rest only speed)."""

    bucket_size: int = 8
    memory_gib: float = 8.0
    cpu_threads: int = 1

    def validate(self) -> None:
        if self.bucket_size < 1:
            raise InvalidParameterError("[batch] bucket_size must be at least 1")
        if not self.memory_gib > 0:
            raise InvalidParameterError("[batch] memory_gib must be > 0")
        if self.cpu_threads < 1:
            raise InvalidParameterError("[batch] cpu_threads must be at least 1")


@dataclass(frozen=True)
class BatchConfig:
    """Validated shared settings of a batch.

    Attributes
    ----------
    explain
        Explain options by ``protscramble explain`` dest name (all keys present).
    compare, batch
        The other two sections.
    background
        ``explain["background"]`` resolved: a kind name or a loaded array.
    background_msa
        The loaded ``background_a3m`` alignment, if any.
    source
        File the config was read from (``None`` for defaults).
    """

    explain: dict[str, Any] = field(default_factory=explain_defaults)
    compare: CompareSettings = field(default_factory=CompareSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)
    background: str | np.ndarray = "native"
    background_msa: MSA | None = None
    source: str | None = None

    def scrambler_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~protscramble.explain.explain_trrosetta` from ``[explain]``."""
        e = self.explain
        return {
            "mode": e["mode"],
            "target_bits": e["target_bits"],
            "background": self.background,
            "pseudocount": e["pseudocount"],
            "background_msa": self.background_msa,
            "use_msa_features": not e["no_msa_features"],
            "steps": e["steps"],
            "samples": e["samples"],
            "eval_samples": e["eval_samples"],
            "learning_rate": e["learning_rate"],
            "temperature": e["temperature"],
            "sampling": e["sampling"],
            "entropy_weight": e["entropy_weight"],
            "kl_direction": e["kl_direction"],
            "scramble_msa": e["scramble_msa"],
            "clip_value": e["clip_value"],
            "accumulation_steps": e["accumulation_steps"],
        }

    def as_dict(self) -> dict[str, Any]:
        return {"explain": dict(self.explain), "compare": asdict(self.compare), "batch": asdict(self.batch)}

    def settings_hash(self) -> str:
        """Digest of every setting that shapes results (not paths, threads or memory)."""
        explain = {
            k: v
            for k, v in self.explain.items()
            # settings added later are left out at their defaults, so older batches still resume
            if k not in _EXECUTION_KEYS and not (k in LATER_DEFAULTS and v == LATER_DEFAULTS[k])
        }
        if isinstance(self.background, np.ndarray):
            explain["background"] = hashlib.sha256(
                np.ascontiguousarray(self.background).tobytes()
            ).hexdigest()
        if self.background_msa is not None:
            explain["background_a3m"] = hashlib.sha256(self.background_msa.codes.tobytes()).hexdigest()
        compare = asdict(self.compare)
        if not compare["enabled"]:
            compare = {"enabled": False}
        payload = {"explain": explain, "compare": compare, "bucket_size": self.batch.bucket_size, "format": 1}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _key(name: str) -> str:
    return name.strip().replace("-", "_")


def _unknown(section: str, key: str, known: list[str]) -> ProtscrambleError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return InvalidParameterError(f"config: unknown key {key!r} in [{section}]{hint}")


def _explain_value(key: str, value: Any, action: argparse.Action) -> Any:
    where = f"config [explain] {key}"
    if action.nargs == 0:  # a flag such as --no-msa-features
        if not isinstance(value, bool):
            raise InvalidParameterError(f"{where} must be true or false, got {value!r}")
        return value
    if key == "models" and isinstance(value, list):
        value = ",".join(map(str, value))
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidParameterError(f"{where} must be a {'string' if action.type is None else 'number'}")
    if action.type is None:
        if not isinstance(value, str):
            raise InvalidParameterError(f"{where} must be a string, got {value!r}")
        converted: Any = value
    else:
        try:
            converted = action.type(str(value))
        except (argparse.ArgumentTypeError, ValueError) as err:
            raise InvalidParameterError(f"{where}: {err or f'bad value {value!r}'}") from None
    if action.choices is not None and converted not in action.choices:
        raise InvalidParameterError(f"{where} must be one of {', '.join(action.choices)}, got {value!r}")
    return converted


def _section(data: Any, name: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidParameterError(f"config: [{name}] must be a table of key = value")
    return {_key(k): v for k, v in data.items() if v is not None}  # JSON null = default


def _dataclass_section(cls: type, name: str, data: dict[str, Any]) -> Any:
    types = {f.name: f.type for f in fields(cls)}
    for key, value in data.items():
        if key not in types:
            raise _unknown(name, key, list(types))
        want = str(types[key])
        ok = (
            isinstance(value, bool)
            if want == "bool"
            else isinstance(value, int) and not isinstance(value, bool)
            if want == "int"
            else isinstance(value, int | float) and not isinstance(value, bool)
            if want == "float"
            else isinstance(value, str)
        )
        if not ok:
            raise InvalidParameterError(
                f"config [{name}] {key} must be of type {want.split(' ')[0]}, got {value!r}"
            )
    return cls(**data)


def _resolve_path(base: Path, text: str) -> str:
    p = Path(os.path.expanduser(text))
    return str(p if p.is_absolute() else (base / p).resolve())


def _load_background(value: str) -> str | np.ndarray:
    if value in BACKGROUND_KINDS:
        return value
    path = Path(value)
    if path.suffix != ".npy":
        raise InvalidParameterError(
            f"config [explain] background must be one of {', '.join(BACKGROUND_KINDS)} or a .npy file, got {value!r}"
        )
    if not path.is_file():
        raise InvalidParameterError(f"config [explain] background file not found: {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise InvalidParameterError(f"cannot read background {path}: {err}") from None
    if arr.ndim != 1:
        raise InvalidParameterError("a batch background array must be (A,): designs differ in length")
    return arr


def build_config(
    data: dict[str, Any], base: str | os.PathLike = ".", source: str | None = None
) -> BatchConfig:
    """Validate a parsed config (the three sections as dicts) into a :class:`BatchConfig`."""
    if not isinstance(data, dict):
        raise InvalidParameterError(
            "config: the top level must be a table with [explain], [compare], [batch]"
        )
    for name in data:
        if name not in ("explain", "compare", "batch"):
            raise _unknown("top level", name, ["explain", "compare", "batch"])
    base = Path(base)
    actions = _explain_actions()
    explain = {k: a.default for k, a in actions.items()}
    for key, value in _section(data.get("explain"), "explain").items():
        if key not in actions:
            raise _unknown("explain", key, list(actions))
        explain[key] = _explain_value(key, value, actions[key])
    for key in ("background_a3m", "weights"):
        if explain[key] is not None:
            explain[key] = _resolve_path(base, explain[key])
    if explain["background"] not in BACKGROUND_KINDS:
        explain["background"] = _resolve_path(base, explain["background"])
    from ..predictors.trrosetta.weights import parse_models

    parse_models(explain["models"])
    ScramblerSettings(
        mode=explain["mode"],
        target_bits=explain["target_bits"],
        entropy_weight=explain["entropy_weight"],
        steps=explain["steps"],
        samples=explain["samples"],
        learning_rate=explain["learning_rate"],
        temperature=explain["temperature"],
        sampling=explain["sampling"],
        kl_direction=explain["kl_direction"],
        clip_value=explain["clip_value"],
        accumulation_steps=explain["accumulation_steps"],
        max_batch=explain["max_batch"],
    ).validate()
    compare = _dataclass_section(CompareSettings, "compare", _section(data.get("compare"), "compare"))
    compare.validate()
    batch = _dataclass_section(BatchSettings, "batch", _section(data.get("batch"), "batch"))
    batch.validate()
    return BatchConfig(
        explain=explain,
        compare=compare,
        batch=batch,
        background=_load_background(explain["background"]),
        background_msa=read_a3m(explain["background_a3m"]) if explain["background_a3m"] else None,
        source=source,
    )


def load_config(path: str | os.PathLike | None) -> BatchConfig:
    """Read a ``.toml`` or ``.json`` config file (``None``: every default).

    Raises
    ------
    InputFileError
        Missing or unparseable file.
    InvalidParameterError
        Unknown key or bad value.
    """
    if path is None:
        return build_config({})
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"config file not found: {p}")
    text = p.read_bytes().decode("utf-8", "replace")
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
        raise InputFileError(f"{p} is not valid {kind}: {err}") from None
    return build_config(data, p.resolve().parent, str(p))
