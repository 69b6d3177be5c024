"""Saving and loading an MLP: JSON (the default) or numpy's `.npz`.

A saved model holds its architecture (`MLP.config()`) and its state dict (PyTorch's names
and shapes), plus an optional `metadata` dict (class names, feature scaling, ...):

    {"format": "chainrule-mlp", "version": 1,
     "architecture": {"nin": 2, "nouts": [16, 16, 1], "activation": "relu", ...},
     "state_dict": {"layers.0.weight": [[...], ...], "layers.0.bias": [...], ...},
     "metadata": {...}}

JSON writes each float with `repr`, the shortest text that reads back to the same float, so
weights round-trip exactly. Writes are atomic: the file is written under a temporary name in
the same directory and then renamed over the target (`os.replace`), so a crash never leaves
half a model. A corrupt, truncated or mismatched file raises `ValueError` naming the problem,
and a model given to `load` keeps its weights.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from .layers import ACTIVATIONS, MLP
from .module import real_array

FORMAT = "chainrule-mlp"
VERSION = 1


def _umask() -> int:
    """The process umask: from /proc on Linux, else by setting it and setting it straight
    back (os.umask has no read-only form; the /proc read avoids that brief change, which
    another thread could see)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write a file all at once: `write(f)` fills a temporary file beside `path`, which is
    then renamed over `path`. On any error the temporary file is removed and `path` is as
    it was.

    The file ends with the permissions a plain `open(path, "wb")` would give: an existing
    file keeps its mode, a new one gets 0o666 minus the umask (`mkstemp` makes 0o600).
    """
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _document(model: MLP, metadata: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(model, MLP):
        raise TypeError(f"save: expected an MLP, got {type(model).__name__}")
    state = model.state_dict()
    for name, arr in state.items():
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"save: {name} holds a NaN or infinite weight; not saving it")
    return {
        "format": FORMAT,
        "version": VERSION,
        "architecture": model.config(),
        "state_dict": {name: arr.tolist() for name, arr in state.items()},
        "metadata": metadata or {},
    }


def save(model: MLP, path: str | Path, metadata: dict[str, Any] | None = None) -> None:
    """Save `model` (architecture + weights) to `path`, atomically.

    Args:
        model: an MLP with named activations.
        path: ends in `.npz` for numpy's format; anything else is written as JSON.
        metadata: JSON-serialisable extras stored beside the weights.
    Raises:
        ValueError: a callable activation, a non-finite weight, or metadata JSON cannot hold.
        OSError: the directory does not exist or cannot be written.
    """
    doc = _document(model, metadata)
    path = Path(path)
    if path.suffix == ".npz":
        header = {k: v for k, v in doc.items() if k != "state_dict"}
        arrays = {name: np.asarray(v, dtype=np.float64) for name, v in doc["state_dict"].items()}
        header_text = json.dumps(header, allow_nan=False)

        def write_npz(f: IO[bytes]) -> None:
            np.savez(f, __header__=np.array(header_text), **arrays)  # type: ignore[arg-type]

        atomic_write(path, write_npz)
    else:
        text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    data = path.read_bytes()
    if path.suffix == ".npz":
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                header = json.loads(str(z["__header__"]))
                state = {k: z[k] for k in z.files if k != "__header__"}
        except Exception as e:  # zipfile, numpy and json each raise their own kinds
            raise ValueError(f"{path}: not a readable .npz model file ({e})") from None
        if not isinstance(header, dict):
            raise ValueError(f"{path}: the header is not a JSON object")
        header["state_dict"] = state
        return header
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a JSON model file (not UTF-8 text)") from None
    except RecursionError:
        raise ValueError(f"{path}: not a model file (JSON nested too deeply)") from None
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: not valid JSON (truncated or corrupt?): {e.msg} at line {e.lineno}, "
            f"column {e.colno}"
        ) from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    return doc


def _check_document(doc: dict[str, Any], path: Path) -> None:
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a chainrule model (format is {doc.get('format')!r})")
    if doc.get("version") != VERSION:
        raise ValueError(f"{path}: unsupported version {doc.get('version')!r}, expected {VERSION}")
    for key in ("architecture", "state_dict"):
        if not isinstance(doc.get(key), dict):
            raise ValueError(f"{path}: missing or malformed {key!r}")


def _state_arrays(doc: dict[str, Any], path: Path) -> dict[str, np.ndarray]:
    state = {}
    for name, value in doc["state_dict"].items():
        try:
            state[name] = real_array(value, name)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    return state


#: Limits on a saved architecture, far beyond what a network of scalar Values can train
#: (each weight is a Python object): a file claiming more is corrupt.
MAX_LAYERS = 1_000
MAX_PARAMETERS = 10_000_000


def _size(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"architecture.{field} is {value!r:.80}, expected a positive int")
    return value


def check_architecture(arch: Any, state: dict[str, np.ndarray]) -> None:
    """Check a saved architecture against the state dict's shapes, before building anything.

    A model is built from `arch`, so a corrupt size (say `"nouts": [1000000000, 1]`) would
    allocate gigabytes of Values; the state dict's arrays are already in memory, so
    requiring the architecture to match their shapes bounds the model by the file's size.

    Args:
        arch: the file's "architecture" object (`MLP.config()` when it was saved).
        state: the file's state dict, as float64 arrays.
    Raises:
        ValueError: one line naming the field: a missing key, a size that is not a positive
            int, more than `MAX_LAYERS` layers or `MAX_PARAMETERS` parameters, an unknown
            activation, or a parameter whose shape differs from what the architecture says.
    """
    if not isinstance(arch, dict):
        raise ValueError(f"architecture is {type(arch).__name__}, expected an object")
    for key in ("nin", "nouts", "activation", "output_activation"):
        if key not in arch:
            raise ValueError(f"architecture has no {key!r}")
    nin = _size(arch["nin"], "nin")
    nouts = arch["nouts"]
    if not isinstance(nouts, list) or not 1 <= len(nouts) <= MAX_LAYERS:
        raise ValueError(
            f"architecture.nouts is {nouts!r:.80}, expected a list of 1..{MAX_LAYERS} sizes"
        )
    sizes = [nin, *(_size(n, f"nouts[{i}]") for i, n in enumerate(nouts))]
    for key in ("activation", "output_activation"):
        if arch[key] not in ACTIVATIONS:
            raise ValueError(
                f"architecture.{key} is {arch[key]!r:.80}, expected one of {sorted(ACTIVATIONS)}"
            )
    expected: dict[str, tuple[int, ...]] = {}
    for i in range(len(nouts)):
        expected[f"layers.{i}.weight"] = (sizes[i + 1], sizes[i])
        expected[f"layers.{i}.bias"] = (sizes[i + 1],)
    for name, shape in expected.items():
        if name not in state:
            raise ValueError(f"{name} is missing, but the architecture says {shape}")
        if state[name].shape != shape:
            raise ValueError(
                f"{name} has shape {state[name].shape} but the architecture says {shape}"
            )
    unexpected = [name for name in state if name not in expected]
    if unexpected:
        raise ValueError(f"the architecture has no parameters {unexpected}")
    total = sum(int(np.prod(shape)) for shape in expected.values())
    if total > MAX_PARAMETERS:
        raise ValueError(f"the model has {total} parameters, more than {MAX_PARAMETERS}")


def load_with_metadata(path: str | Path, model: MLP | None = None) -> tuple[MLP, dict[str, Any]]:
    """As `load`, also returning the saved metadata dict."""
    path = Path(path)
    doc = _read(path)
    _check_document(doc, path)
    state = _state_arrays(doc, path)
    if model is None:
        arch = doc["architecture"]
        try:
            check_architecture(arch, state)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        model = MLP(
            arch["nin"],
            arch["nouts"],
            activation=arch["activation"],
            output_activation=arch["output_activation"],
        )
    try:
        model.load_state_dict(state)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: metadata is not a JSON object")
    return model, metadata


def load(path: str | Path, model: MLP | None = None) -> MLP:
    """Load a model saved by `save`.

    Args:
        path: a `.json` (or other) or `.npz` file written by `save`.
        model: if given, its weights are replaced (the architecture in the file is not
            used, but every name and shape must match); else a new MLP is built.
    Returns:
        The model.
    Raises:
        FileNotFoundError: no such file.
        ValueError: not valid JSON / npz (truncated, corrupt), not a chainrule model, an
            entry that is not a finite real number (NaN, inf, `true`), an architecture that
            does not match the state dict's shapes (checked before any model is built; see
            `check_architecture`), or names/shapes that do not match `model`, which is
            then unchanged.
    """
    return load_with_metadata(path, model)[0]


__all__ = ["atomic_write", "check_architecture", "load", "load_with_metadata", "save"]
