"""Saving and loading models, and writing files so that a crash never leaves half a file.

A model file is a safetensors file (https://huggingface.co/docs/safetensors): the
weights as named arrays, and in its text metadata the architecture (``model.config()``:
an MLP's sizes and activations, a formula's text and inputs), the names of the frozen
parameters and a SHA-256 checksum of the weights. Loading rebuilds the model from the
architecture and checks every name, shape and dtype, and the checksum, so a truncated or
corrupted file is refused with an error that names it. Nothing is ever unpickled.

The ``safetensors`` package is needed only here, and imported only when a model is saved
or loaded: ``pip install 'chainrule[io]'``.

>>> import pathlib, tempfile
>>> from chainrule import nn
>>> path = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
>>> model = nn.MLP([2, 3, 1], activation="tanh", seed=1)
>>> _ = save(model, path)
>>> again = load(path)
>>> again.config() == model.config()
True
>>> bool((again.hidden.weight.data == model.hidden.weight.data).all())
True
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import math
import os
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.datasets import read_bounded
from chainrule.errors import ChainruleError
from chainrule.formula import Formula
from chainrule.nn.layers import config_weights, from_config
from chainrule.nn.module import Module

#: The ``format`` entry of a chainrule model file's metadata, and the version written.
FORMAT = "chainrule-model"
VERSION = 1


# ---------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` all at once, or not at all.

    The data goes to a temporary file in the same folder, which is flushed to disk and
    then renamed over ``path`` (``os.replace`` is atomic), so a crash or an interrupt
    leaves either the old file or the new one, never a broken one. An existing file keeps
    its permissions. A path that cannot be written raises a ChainruleError naming it.

    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> atomic_write(target, "step 1: b3 = 1.5655\\n").read_text()
    'step 1: b3 = 1.5655\\n'
    """
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    return atomic_write_with(path, lambda temporary: Path(temporary).write_bytes(payload))


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[str], object]) -> Path:
    """Let ``write`` fill a temporary file next to ``path``, then move it over ``path``.

    For writers that want a file name rather than bytes (matplotlib, Graphviz). The
    temporary file ends in ``path``'s suffix, for writers that pick a format from it.
    Everything else is as for :func:`atomic_write`: the file is flushed to disk before the
    atomic rename, a symbolic link is written through, an existing file keeps its
    permissions, a failure or an interrupt leaves no temporary file behind, and a path
    that cannot be written raises a ChainruleError naming it.

    >>> import pathlib, tempfile
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write_with(target, lambda temporary: pathlib.Path(temporary).write_text("hi")).name
    'a.txt'
    """
    shown = os.fspath(_file_path(path, "cannot write"))
    try:
        target = Path(os.path.realpath(path))  # write through a symbolic link, not over it
        folder = target.parent
        is_dir, folder_exists = target.is_dir(), folder.is_dir()
    except OSError as exc:  # e.g. a name longer than the system allows
        raise ChainruleError(f"cannot write {shown[:80]}: {exc.strerror or exc}") from None
    if is_dir:
        raise ChainruleError(f"cannot write {shown}: it is a folder")
    if not folder_exists:
        raise ChainruleError(f"cannot write {shown}: the folder {folder} does not exist")
    _remove_stale_temporaries(folder, target.name)
    try:
        mode: int | None = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = None
    temporary: Path | None = None
    try:
        temporary = _create_temporary(folder, target.name, target.suffix)
        write(os.fspath(temporary))
        with open(temporary, "rb+") as handle:  # on disk before the rename makes it visible
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
        temporary = None
        _fsync_folder(folder)
    except OSError as exc:
        raise ChainruleError(f"cannot write {shown}: {exc.strerror or exc}") from None
    finally:
        if temporary is not None:  # failed or interrupted: leave no temporary file behind
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    return Path(shown)


#: How a temporary file of a save is named: recognisably, and tied to its target.
_TEMPORARY_PREFIX = ".{name}.chainrule-partial-"
#: A temporary file older than this (seconds) is left over from an interrupted save.
STALE_AFTER = 60.0


def _remove_stale_temporaries(folder: Path, name: str) -> None:
    """Delete what interrupted saves of the same target left behind (kill -9, power cut):
    temporary files of that target older than :data:`STALE_AFTER` seconds."""
    now = time.time()
    with contextlib.suppress(OSError):
        for leftover in folder.glob(glob.escape(_TEMPORARY_PREFIX.format(name=name)) + "*"):
            with contextlib.suppress(OSError):
                if now - leftover.stat().st_mtime > STALE_AFTER:
                    leftover.unlink()


def _file_path(path: Any, what: str) -> str | os.PathLike[str]:
    """``path`` checked to be a file path, or a ChainruleError saying what was expected."""
    if not isinstance(path, str | os.PathLike) or not os.fspath(path):
        raise ChainruleError(
            f"{what}: expected a file path (a str or a pathlib.Path), got {path!r}"
        )
    return path


def _create_temporary(folder: Path, name: str, suffix: str) -> Path:
    """A new empty file next to the target (usual permissions, umask applied)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        candidate = folder / f"{_TEMPORARY_PREFIX.format(name=name)}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(candidate, flags, 0o666))
            return candidate
        except FileExistsError:
            continue


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; other systems do not allow opening folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------


def _safetensors_numpy() -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise ChainruleError(
            "saving and loading models needs the safetensors package: pip install 'chainrule[io]'"
        ) from None
    return safetensors.numpy


def _checksum(tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(f"{name}\0{little.dtype.str}\0{array.shape}\0".encode())
        digest.update(little.tobytes())
    return digest.hexdigest()


def save(model: Module, path: str | os.PathLike[str]) -> Path:
    """Save ``model`` (weights and architecture) to a safetensors file at ``path``.

    The model needs a ``config()`` (MLP, Sequential, Linear and Formula have one). The
    file is written atomically: an interrupted save leaves the previous file intact.

    >>> import pathlib, tempfile
    >>> from chainrule import Formula
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "seed.safetensors"
    >>> save(Formula("p = w * dosage + b", inputs=["dosage"]), path).name
    'seed.safetensors'
    """
    _file_path(path, "save")
    config = getattr(model, "config", None)
    if not callable(config):
        raise ChainruleError(
            f"cannot save a {type(model).__name__}: it has no config() describing its "
            "architecture (MLP, Sequential, Linear and Formula models have one)"
        )
    tensors = {
        name: p.data if p.data.flags.c_contiguous else p.data.copy()  # (keeps 0-d scalars 0-d)
        for name, p in model.named_parameters()
    }
    metadata = {
        "format": FORMAT,
        "version": str(VERSION),
        "config": json.dumps(config()),
        "frozen": json.dumps([name for name, p in model.named_parameters() if p.frozen]),
        "sha256": _checksum(tensors),
    }
    payload = _safetensors_numpy().save(tensors, metadata=metadata)
    return atomic_write(path, payload)


def _header(raw: bytes, where: str) -> dict[str, Any]:
    """The JSON header of a safetensors file (8-byte little-endian length, then JSON)."""
    if len(raw) < 8:
        raise ChainruleError(f"{where}: the file is truncated or is not a model file")
    size = int.from_bytes(raw[:8], "little")
    if size > len(raw) - 8:
        raise ChainruleError(f"{where}: the file is truncated or is not a model file")
    try:
        header = json.loads(raw[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ChainruleError(f"{where}: the file is corrupted or is not a model file") from None
    if not isinstance(header, dict):
        raise ChainruleError(f"{where}: the file is corrupted or is not a model file")
    return header


def _metadata(header: dict[str, Any], where: str) -> tuple[dict[str, Any], list[str], str]:
    """The architecture, the frozen names and the checksum from the file's metadata."""
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ChainruleError(
            f"{where}: a safetensors file, but not a chainrule model (its metadata does not "
            "describe the architecture); save models with chainrule.save"
        )
    version = meta.get("version", "")
    if not isinstance(version, str) or not version.isdigit() or len(version) > 6:
        raise ChainruleError(f"{where}: the file's metadata is corrupted (version {version!r})")
    if int(version) > VERSION:
        raise ChainruleError(
            f"{where}: written by a newer chainrule (file version {version!r}, this one "
            f"reads version {VERSION}); upgrade chainrule to load it"
        )
    try:
        config = json.loads(meta["config"])
        frozen = json.loads(meta.get("frozen", "[]"))
        checksum = meta["sha256"]
    except (KeyError, TypeError, ValueError, RecursionError):  # (configs nested very deep)
        raise ChainruleError(f"{where}: the file's metadata is corrupted") from None
    if not isinstance(config, dict) or not isinstance(frozen, list):
        raise ChainruleError(f"{where}: the file's metadata is corrupted")
    return config, frozen, checksum


_DTYPE_BYTES = {"F64": 8, "F32": 4}


def _check_sizes(header: dict[str, Any], config: dict[str, Any], size: int, where: str) -> None:
    """The tensors the header lists (names, shapes, byte ranges) are consistent, fit in the
    file, and hold as many numbers as the config's model has weights: a small file whose
    config asks for a 40000 x 40000 layer is refused before 12 GiB are allocated."""
    total = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        ok = isinstance(entry, dict) and entry.get("dtype") in _DTYPE_BYTES
        shape, offsets = (entry.get("shape"), entry.get("data_offsets")) if ok else (None, None)
        ok = ok and isinstance(shape, list) and all(_whole(n) for n in shape)
        ok = ok and isinstance(offsets, list) and len(offsets) == 2 and all(map(_whole, offsets))
        if not ok:
            raise ChainruleError(f"{where}: the file is corrupted (tensor {name!r} in its header)")
        count = math.prod(shape)
        if offsets[1] - offsets[0] != count * _DTYPE_BYTES[entry["dtype"]] or offsets[1] > size:
            raise ChainruleError(
                f"{where}: the file is corrupted (tensor {name!r} of shape {tuple(shape)} "
                "does not fit its bytes)"
            )
        total += count
    expected = config_weights(config)
    # More weights than the file holds would be allocated for nothing; fewer or equal
    # are bounded by the file's size, and state_mismatch names the tensor that differs.
    if expected is not None and expected > total:
        raise ChainruleError(
            f"{where}: the file's config describes a model of {expected:,} weights but the "
            f"file holds {total:,}: the file is corrupted"
        )


def _whole(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0


def _build(config: dict[str, Any], where: str) -> Module:
    """The model that a config describes, with fresh weights."""
    try:
        if config.get("kind") == "formula":
            return Formula.from_config(config)

        return from_config(config)
    except ChainruleError as exc:
        raise ChainruleError(f"{where}: cannot rebuild the model: {exc}") from None


#: The largest model file :func:`load` reads: the most weights a model may have
#: (1,000,000 float64 numbers) and a generous header.
MAX_FILE_BYTES = 1_000_000 * 8 + (1 << 20)


def load(path: str | os.PathLike[str], model: Module | None = None) -> Module:
    """Load a model saved by :func:`save`: rebuilt from its architecture, weights set.

    With ``model``, the weights go into that model instead (its parameter names, shapes
    and dtypes must match the file's; its frozen parameters stay as they are). Otherwise
    the parameters that were frozen when saved come back frozen. A missing,
    truncated, corrupted or mismatched file raises a ChainruleError naming the file.

    >>> import pathlib, tempfile
    >>> from chainrule import nn
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "mlp.safetensors"
    >>> _ = save(nn.MLP([1, 2, 1], activation="softplus"), path)
    >>> load(path)
    MLP([1, 2, 1], activation='softplus')
    """
    where = os.fspath(_file_path(path, "load"))
    try:
        raw = read_bounded(Path(path), where, MAX_FILE_BYTES, "a model file")
    except FileNotFoundError:
        raise ChainruleError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ChainruleError(f"{where}: is a folder, not a model file") from None
    except OSError as exc:
        raise ChainruleError(f"{where}: cannot read the file ({exc.strerror or exc})") from None
    header = _header(raw, where)
    config, frozen, checksum = _metadata(header, where)
    _check_sizes(header, config, len(raw), where)  # before anything is built or read
    reader = _safetensors_numpy()
    try:
        tensors = reader.load(raw)
    except Exception as exc:  # safetensors raises its own error type for a damaged file
        raise ChainruleError(
            f"{where}: the file is truncated or corrupted ({str(exc).strip()})"
        ) from None
    if _checksum(tensors) != checksum:
        raise ChainruleError(
            f"{where}: the weights do not match the file's checksum: the file is corrupted"
        )
    built = model is None
    if model is None:
        model = _build(config, where)
    problem = model.state_mismatch(tensors, source="the file")
    if problem:
        raise ChainruleError(f"{where}: {problem}")
    model.load_state_dict(tensors)
    if built:  # a model given by the caller keeps its own choice of frozen parameters
        for name, p in model.named_parameters():
            p.frozen = name in frozen
    return model
