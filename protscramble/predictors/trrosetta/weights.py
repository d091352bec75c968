"""Locating and loading the pretrained trRosetta weights.

The five published models (``model.xaa.pt`` ... ``model.xae.pt``) ship in
the PyPI wheel ``tr-rosetta-pytorch`` as ``models/models.tar.gz``. We find
that archive through the package's installed-file list -- importing the
package would extract it into site-packages -- and extract it once into a
user cache folder:

* ``$PROTSCRAMBLE_TRROSETTA_WEIGHTS``: a folder with the ``.pt`` files, or an
  archive holding them, stored anywhere (overrides the wheel);
* ``$PROTSCRAMBLE_CACHE`` (default ``$XDG_CACHE_HOME/protscramble`` or
  ``~/.cache/protscramble``): where the archive is extracted.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import torch

from ...errors import InvalidParameterError, WeightsNotFoundError

MODEL_NAMES = ("xaa", "xab", "xac", "xad", "xae")
WEIGHTS_ENV = "PROTSCRAMBLE_TRROSETTA_WEIGHTS"
CACHE_ENV = "PROTSCRAMBLE_CACHE"
INSTALL_HINT = (
    "install them with `pip install tr-rosetta-pytorch==0.0.3`, or set "
    f"{WEIGHTS_ENV} to a folder (or archive) holding model.xaa.pt ... model.xae.pt"
)


def parse_models(spec: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"xaa"``, ``"all"`` or ``"xaa,xab"`` -> model names, validated.

    Examples
    --------
    >>> parse_models("xab,xaa")
    ('xab', 'xaa')
    >>> len(parse_models("all"))
    5
    """
    names = (
        list(spec) if isinstance(spec, list | tuple) else [s.strip() for s in spec.split(",") if s.strip()]
    )
    if names == ["all"]:
        return MODEL_NAMES
    bad = [n for n in names if n not in MODEL_NAMES]
    if bad or not names:
        raise InvalidParameterError(
            f"unknown trRosetta model(s) {', '.join(bad) or '(none)'}; use all or a list of {', '.join(MODEL_NAMES)}"
        )
    return tuple(dict.fromkeys(names))


def cache_dir() -> Path:
    """The user cache folder (``$PROTSCRAMBLE_CACHE`` overrides)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "protscramble"


def packaged_archive() -> Path | None:
    """Path of ``models.tar.gz`` inside the installed ``tr-rosetta-pytorch``, without importing it."""
    try:
        dist = importlib.metadata.distribution("tr-rosetta-pytorch")
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith("models/models.tar.gz"):
            path = Path(str(dist.locate_file(f)))
            return path if path.is_file() else None
    return None


def _complete(folder: Path) -> bool:
    return all((folder / f"model.{n}.pt").is_file() for n in MODEL_NAMES)


def _extract(archive: Path) -> Path:
    """Extract the model files of ``archive`` into the cache once; return the folder."""
    stat = archive.stat()
    key = hashlib.sha1(f"{archive.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir() / "trrosetta" / key
    if _complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                # Only the plain model files, never paths or links from the archive.
                if member.isfile() and name.startswith("model.") and name.endswith(".pt"):
                    src = tar.extractfile(member)
                    assert src is not None
                    with open(tmp / name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        if target.exists() and not _complete(target):
            # a partial folder (not published by this code): move it aside in one rename, then delete
            stale = Path(tempfile.mkdtemp(prefix=".stale-", dir=target.parent))
            with contextlib.suppress(FileNotFoundError):  # another process moved it first
                os.replace(target, stale / key)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            # Another process (a batch worker, a CLI run beside a notebook) published the same files
            # first: keep theirs, which readers may already hold open, rather than deleting them.
            if not _complete(target):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise WeightsNotFoundError(f"could not extract trRosetta weights from {archive}: {err}") from None
    return target


def weights_folder(weights: str | os.PathLike | None = None) -> Path:
    """Folder holding ``model.x??.pt``: from ``weights``, the environment, or the installed wheel."""
    source = weights if weights is not None else os.environ.get(WEIGHTS_ENV) or None
    if source is not None:
        path = Path(source).expanduser()
        if path.is_dir():
            return path
        if path.is_file():
            return _extract(path)
        raise WeightsNotFoundError(f"trRosetta weights not found at {path}; {INSTALL_HINT}")
    archive = packaged_archive()
    if archive is None:
        raise WeightsNotFoundError(f"trRosetta weights not found; {INSTALL_HINT}")
    return _extract(archive)


def load_state_dict(name: str, weights: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """State dict of one published model, loaded with ``weights_only=True``."""
    (name,) = parse_models(name)
    path = weights_folder(weights) / f"model.{name}.pt"
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} is missing; {INSTALL_HINT}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or non-weights file
        raise WeightsNotFoundError(f"could not load trRosetta weights {path}: {err}") from None
