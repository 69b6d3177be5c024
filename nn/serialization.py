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
half a model (`autograd.files.atomic_write`, which also fsyncs the file and its folder). A
corrupt, truncated or mismatched file raises `ValueError` naming the problem, and a model given
to `load` keeps its weights: everything is checked before anything changes.

Limits (a file over them is refused before anything big is allocated): a model file of at
most `MAX_MODEL_BYTES` bytes, the arrays of an `.npz` declaring at most that much in all
(checked from the zip directory and each array's header before inflating it), at most
`MAX_PARAMETERS` parameters and `MAX_LAYERS` layers.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from autograd.files import atomic_write, read_regular

from .layers import ACTIVATIONS, MLP
from .module import real_array

FORMAT = "chainrule-mlp"
VERSION = 1


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


#: The largest model file `load` reads, and the most its `.npz` arrays may inflate to, in
#: bytes: `MAX_PARAMETERS` float64 weights as JSON text (about 20 bytes each) fit well within.
MAX_MODEL_BYTES = 256 * 1024 * 1024


def _read_npz(data: bytes, path: Path) -> dict[str, Any]:
    """The header and arrays of an `.npz` model, checking declared sizes before inflating.

    A zip member says how large it inflates to (its directory entry) and a `.npy` array says
    its dtype and shape (its header): both are checked against `MAX_MODEL_BYTES` first, so a
    small file that would inflate to gigabytes (a decompression bomb) is refused unread.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            declared = sum(m.file_size for m in members)
            if declared > MAX_MODEL_BYTES:
                raise ValueError(
                    f"{path}: its arrays declare {declared:,} bytes, more than the "
                    f"{MAX_MODEL_BYTES:,} a model file may hold; not inflating them"
                )
            arrays: dict[str, np.ndarray] = {}
            for member in members:
                name = member.filename.removesuffix(".npy")
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
                    else:
                        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
                    if dtype.hasobject:
                        raise ValueError(f"{path}: array {name!r} holds Python objects")
                    size = math.prod(shape) * dtype.itemsize
                    if size > member.file_size:
                        raise ValueError(
                            f"{path}: array {name!r} declares shape {shape} ({size:,} bytes) "
                            f"in a member of {member.file_size:,} bytes"
                        )
                    f.seek(0)
                    arrays[name] = np.lib.format.read_array(f, allow_pickle=False)
    except ValueError:
        raise
    except Exception as e:  # zipfile, numpy and json each raise their own kinds
        raise ValueError(f"{path}: not a readable .npz model file ({_first_line(e)})") from None
    if "__header__" not in arrays:
        raise ValueError(f"{path}: not a readable .npz model file (no __header__)")
    try:
        header = json.loads(str(arrays.pop("__header__")))
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{path}: the .npz header is not valid JSON ({_first_line(e)})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the header is not a JSON object")
    header["state_dict"] = arrays
    return header


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _read(path: Path) -> dict[str, Any]:
    data = read_regular(path, MAX_MODEL_BYTES, "model file")
    if path.suffix == ".npz":
        return _read_npz(data, path)
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
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise ValueError(f"{path}: not a model file ({_first_line(e)})") from None
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
    """As `load`, also returning the saved metadata dict.

    Everything in the file is checked (the document, every weight, the architecture or
    `model`'s names and shapes, the metadata being an object) before `model` changes.
    """
    path = Path(path)
    doc = _read(path)
    _check_document(doc, path)
    state = _state_arrays(doc, path)
    metadata = doc.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise ValueError(f"{path}: metadata is {type(metadata).__name__}, expected a JSON object")
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
        # Checks every name and shape before it changes anything: the last check.
        model.load_state_dict(state)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    return model, metadata


#: The losses a saved model may name (how its outputs become classes; see nn/train.py).
LOSSES = ("hinge", "bce", "cross_entropy", "mse")


def check_metadata(metadata: dict[str, Any], model: MLP) -> dict[str, Any]:
    """Check what `chainrule train` stores in a model's metadata, and fill in defaults.

    Args:
        metadata: the dict `load_with_metadata` returned.
        model: the loaded model (its input and output sizes are what the fields must fit).
    Returns:
        `{"features": [nin names], "classes": [names], "loss": name, "scaler": None or
        {"mean": array, "scale": array}}`; a missing field gets its default (features
        x0, x1, ...; classes 0, 1, ...; loss hinge; no scaler).
    Raises:
        ValueError: one line naming the field: not a list of texts, the wrong length for
            the model (features: one per input; classes: one per output for cross_entropy
            and multi-output mse, two for one output), an unknown loss, a scaler that is
            not an object with `mean` and `scale` lists of finite numbers, one per feature,
            every scale > 0.
    """
    nin, nout = model.nin, model.nouts[-1]
    features = metadata.get("features")
    if features is None:
        features = [f"x{i}" for i in range(nin)]
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise ValueError(f"metadata.features is {features!r:.60}, expected a list of names")
    if len(features) != nin:
        raise ValueError(
            f"metadata.features has {len(features)} names, but the model takes {nin} inputs"
        )
    loss = metadata.get("loss", "hinge")
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"metadata.loss is {loss!r:.60}, expected one of {list(LOSSES)}")
    n_classes = nout if nout > 1 else 2
    if loss in ("hinge", "bce") and nout != 1:
        raise ValueError(f"metadata.loss is {loss!r}, which needs one output; the model has {nout}")
    if loss == "cross_entropy" and nout < 2:
        raise ValueError(
            "metadata.loss is 'cross_entropy', which needs 2 or more outputs; the model has 1"
        )
    classes = metadata.get("classes")
    if classes is None:
        classes = [str(i) for i in range(n_classes)]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"metadata.classes is {classes!r:.60}, expected a list of names")
    if len(classes) != n_classes:
        raise ValueError(
            f"metadata.classes has {len(classes)} names, but the model's {nout} output(s) "
            f"give {n_classes} classes"
        )
    scaler = metadata.get("scaler")
    if scaler is not None:
        if not isinstance(scaler, dict):
            raise ValueError(
                f"metadata.scaler is {type(scaler).__name__}, expected an object with "
                "'mean' and 'scale'"
            )
        arrays = {}
        for key in ("mean", "scale"):
            if key not in scaler:
                raise ValueError(f"metadata.scaler has no {key!r}")
            value = scaler[key]
            if not isinstance(value, list) or len(value) != nin:
                raise ValueError(
                    f"metadata.scaler.{key} is {value!r:.60}, expected a list of {nin} numbers"
                )
            try:
                arrays[key] = real_array(value, f"metadata.scaler.{key}")
            except ValueError as e:
                raise ValueError(str(e)) from None
        bad = np.flatnonzero(~(arrays["scale"] > 0))
        if len(bad):
            raise ValueError(
                f"metadata.scaler.scale[{bad[0]}] is {float(arrays['scale'][bad[0]])!r}, "
                "expected a standard deviation > 0"
            )
        scaler = arrays
    return {"features": features, "classes": classes, "loss": loss, "scaler": scaler}


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


__all__ = [
    "atomic_write",
    "check_architecture",
    "check_metadata",
    "load",
    "load_with_metadata",
    "save",
]
