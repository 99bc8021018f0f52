"""rnnkit's ``.safetensors`` files: the one place that writes and validates them.

A file is a standard safetensors file (readable by ``safetensors.numpy.load_file``)
whose string metadata holds::

    format          "rnnkit"
    format_version  "1"
    kind            "model" | "checkpoint"
    rnnkit_version  the version that wrote it
    document        JSON text: config, vocabulary, scaler, training progress, ...
    sha256          hex digest over the document and every tensor's name, dtype, shape and bytes

safetensors has no checksum, so a flipped byte in the data would load silently; the
``sha256`` entry catches that. Reading validates everything before returning and
raises :class:`~rnnkit.errors.ModelFileError` naming the file, the problem and a fix.
No pickle is involved anywhere.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, deserialize
from safetensors.numpy import save as _safetensors_bytes

from ..errors import ConfigError, DataError, DTypeError, ModelFileError
from .atomic import atomic_write_bytes

__all__ = ["FORMAT_VERSION", "check_tensors", "read_tensors", "write_tensors"]

FORMAT = "rnnkit"
FORMAT_VERSION = 1
KINDS = ("model", "checkpoint")

# safetensors dtype code -> the little-endian NumPy dtype rnnkit stores it as.
DTYPES: dict[str, np.dtype] = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_Fail = Callable[[str, str], ModelFileError]  # (problem, hint) -> the error to raise
_STORED = {dt.name: dt for dt in DTYPES.values()}  # "float32" -> <f4, even for big-endian input
_ALLOWED = ", ".join(_STORED)
_NOUN = {"model": "model file", "checkpoint": "checkpoint"}
_REWRITE = "re-save it, restore it from a backup, or download it again"

# First bytes of files people mistake for model files (checked when safetensors refuses one).
_MAGIC = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model?)"),
    (b"PK\x03\x04", "a zip archive (a .keras model, a PyTorch .pt/.pth file or a NumPy .npz?)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x80", "a Python pickle (a PyTorch .pt/.pth file?); rnnkit never unpickles files"),
    (b"\x08", "possibly an ONNX/protobuf file"),
)


def write_tensors(
    path: str | os.PathLike[str], tensors: Mapping[str, np.ndarray], document: Mapping[str, Any], *, kind: str
) -> None:
    """Atomically write ``tensors`` and the JSON ``document`` to an rnnkit ``.safetensors`` file.

    Arrays may be any memory layout (they are stored C-contiguous, little-endian) and must
    be finite and of dtype float32/float64/int64/int32/uint8/bool. ``document`` must be
    plain JSON (dicts with str keys, lists, str, int, finite float, bool, None); tuples come
    back as lists. ``kind`` is ``"model"`` or ``"checkpoint"``.
    """
    _check_kind(kind)
    if not isinstance(document, dict):
        raise ConfigError(f"document must be a dict, got {type(document).__name__}")
    arrays = {name: _storable(name, a) for name, a in tensors.items()}
    document_json = _to_json(document, "document")
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "kind": kind,
        "rnnkit_version": _rnnkit_version(),
        "document": document_json,
        "sha256": _digest(arrays, document_json),
    }
    atomic_write_bytes(path, _safetensors_bytes(arrays, metadata=metadata))


def read_tensors(path: str | os.PathLike[str], *, kind: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and fully validate an rnnkit file of the given ``kind``; return ``(tensors, document)``.

    Checks, in order: the file exists and is not empty; safetensors can parse it; it carries
    rnnkit metadata; the format version is supported; the kind matches; every dtype is
    allowed; the checksum matches; the document is a JSON object; every tensor is finite.
    """
    _check_kind(kind)
    path = Path(path)

    def fail(problem: str, hint: str) -> ModelFileError:
        return ModelFileError(f"cannot load {_NOUN[kind]} '{path}': {problem}. Hint: {hint}")

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail("no such file", "check the path and the current directory") from None
    except IsADirectoryError:
        raise fail("it is a directory", "pass the path of the .safetensors file inside it") from None
    if not data:
        raise fail("the file is empty (0 bytes)", f"a copy or download was interrupted; {_REWRITE}")

    try:
        entries = deserialize(data)
    except SafetensorError as e:
        raise fail(*_explain_safetensors_error(str(e), data)) from None
    metadata = _header(data).get("__metadata__") or {}

    if metadata.get("format") != FORMAT:
        raise fail(
            f"it is {_describe_foreign(metadata, [name for name, _ in entries])}, not an rnnkit file",
            "import foreign weights with `rnnkit convert` (or rnnkit.convert), which writes an rnnkit model file",
        )
    missing = [key for key in ("format_version", "kind", "document", "sha256") if key not in metadata]
    if missing:
        raise fail(f"its rnnkit metadata lacks {', '.join(missing)}", f"the file is damaged; {_REWRITE}")
    _check_version(metadata, fail)
    _check_file_kind(metadata["kind"], kind, fail)

    tensors = {}
    for name, entry in entries:
        if entry["dtype"] not in DTYPES:
            raise fail(
                f"tensor '{name}' has dtype {entry['dtype']}, which rnnkit files do not use (allowed: {_ALLOWED})",
                "this file was not written by rnnkit; import it with `rnnkit convert`",
            )
        tensors[name] = np.frombuffer(entry["data"], dtype=DTYPES[entry["dtype"]]).reshape(tuple(entry["shape"]))

    if _digest(tensors, metadata["document"]) != metadata["sha256"]:
        raise fail(
            "its contents do not match the sha256 checksum recorded when it was written, so some bytes are corrupted",
            f"do not use its weights; {_REWRITE}",
        )
    try:
        document = json.loads(metadata["document"], parse_constant=_reject_constant)
    except ValueError as e:
        raise fail(f"its document metadata is not valid JSON ({e})", f"the file is damaged; {_REWRITE}") from None
    if not isinstance(document, dict):
        raise fail(f"its document metadata is a JSON {type(document).__name__}, not an object", _REWRITE)

    for name, a in tensors.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = int(a.size - np.count_nonzero(np.isfinite(a)))
            raise fail(
                f"tensor '{name}' contains {bad} NaN or Inf value(s)",
                "training diverged before this file was written; use an earlier checkpoint, "
                "or retrain with a lower learning rate or gradient clipping",
            )
    return tensors, document


def check_tensors(
    tensors: Mapping[str, np.ndarray],
    expected: Mapping[str, tuple[tuple[int, ...], Any]],
    path: str | os.PathLike[str],
) -> None:
    """Raise ModelFileError unless ``tensors`` has exactly the names, shapes and dtypes in ``expected``.

    ``expected`` maps name -> ``(shape, dtype)``. The message lists every missing and
    unexpected tensor and every shape/dtype mismatch (expected and found), on one line.
    """
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing tensors: {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected tensors: {', '.join(extra)}")
    for name in sorted(set(expected) & set(tensors)):
        shape, dtype = tuple(expected[name][0]), np.dtype(expected[name][1])
        found = tensors[name]
        if found.shape != shape or found.dtype != dtype:
            problems.append(
                f"'{name}' should be {shape} {dtype.name} but the file has {found.shape} {found.dtype.name}"
            )
    if problems:
        raise ModelFileError(
            f"'{path}' does not match the model it is loaded into: {'; '.join(problems)}. "
            "Hint: the file was written for a different configuration (sizes, layers, vocabulary); "
            "build the model from the config stored in the file, or load the file it was written for"
        )


# --------------------------------------------------------------------------- writing


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {list(KINDS)}, got {kind!r}")


def _storable(name: Any, a: Any) -> np.ndarray:
    """Return tensor ``name`` as a C-contiguous little-endian array, after checking it.

    The C-order copy is essential: safetensors 0.8.0 silently writes transposed or strided
    views with the wrong element order (safetensors#825). ``np.asarray(order="C")`` rather
    than ``np.ascontiguousarray``, which would turn a 0-d array into shape (1,).
    """
    if not isinstance(name, str) or not name or name == "__metadata__":
        raise ConfigError(f"tensor names must be non-empty strings other than '__metadata__', got {name!r}")
    if not isinstance(a, np.ndarray):
        raise DTypeError(f"tensor '{name}' must be a NumPy array, got {type(a).__name__}")
    if a.dtype.name not in _STORED:
        raise DTypeError(
            f"tensor '{name}' has dtype {a.dtype}, which rnnkit files cannot store (allowed: {_ALLOWED}); "
            f"convert it, e.g. with .astype(np.float32)"
        )
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(
            f"tensor '{name}' contains NaN or Inf values; refusing to write a file that cannot be loaded. "
            "Training probably diverged: lower the learning rate or clip gradients"
        )
    return np.asarray(a, dtype=_STORED[a.dtype.name], order="C")


def _to_json(value: Any, where: str) -> str:
    """Serialise ``value`` as strict JSON, naming the offending entry if it cannot be."""
    _check_json(value, where)
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _check_json(value: Any, where: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where} has key {key!r} of type {type(key).__name__}; JSON keys must be str")
            _check_json(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where} is {value}, which JSON cannot store; use None for 'no value yet'")
    elif not (value is None or isinstance(value, (str, int, bool))):
        raise ConfigError(
            f"{where} is a {type(value).__name__}, which is not plain JSON; "
            "convert NumPy scalars with int()/float() and store arrays as tensors"
        )


def _digest(tensors: Mapping[str, np.ndarray], document_json: str) -> str:
    """sha256 over the document and, in sorted name order, each tensor's name, dtype, shape and bytes.

    The manifest (document + names, dtypes, shapes) is hashed first, so the byte stream that
    follows is unambiguous. Arrays must be C-contiguous little-endian, as stored.
    """
    names = sorted(tensors)
    manifest = [document_json, [[n, tensors[n].dtype.name, list(tensors[n].shape)] for n in names]]
    h = hashlib.sha256(json.dumps(manifest, ensure_ascii=False).encode("utf-8"))
    for n in names:
        h.update(tensors[n].tobytes())
    return h.hexdigest()


def _rnnkit_version() -> str:
    from .. import __version__  # imported late: rnnkit/__init__ may import this package

    return __version__


# --------------------------------------------------------------------------- reading


def _header(data: bytes) -> dict[str, Any]:
    """The JSON header of safetensors bytes that ``deserialize`` has already accepted."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n])


def _explain_safetensors_error(message: str, data: bytes) -> tuple[str, str]:
    """Turn a SafetensorError message into (problem, hint) in plain English."""
    truncated = f"it was cut off during a copy, download or interrupted write; {_REWRITE}"
    corrupted = f"the file is corrupted; {_REWRITE}"
    if "header too small" in message:
        return f"the file is only {len(data)} bytes, too short to be a safetensors file", truncated
    if "header too large" in message or "invalid header length" in message:
        seems = next((what for magic, what in _MAGIC if data.startswith(magic)), None)
        if seems:
            return f"it is not a safetensors file; it looks like {seems}", "import it with `rnnkit convert`"
        if "invalid header length" in message:
            return "it ends inside its header, or its first 8 bytes are not a safetensors header", truncated
        return "it is not a safetensors file (its first 8 bytes are not a header length)", "check the path"
    if "incomplete metadata" in message:
        return "its size does not match its header (the file is truncated or has extra bytes)", truncated
    if "invalid JSON" in message or "invalid UTF-8" in message:
        return "its header is not valid safetensors JSON (corrupted header)", corrupted
    if "invalid shape, data type, or offset" in message:
        return "its header gives impossible tensor shapes or offsets (corrupted header)", corrupted
    return f"safetensors cannot read it ({message})", corrupted


def _describe_foreign(metadata: Mapping[str, str], names: list[str]) -> str:
    """Say what a safetensors file without rnnkit metadata seems to be."""
    frameworks = {"pt": "PyTorch", "tf": "TensorFlow", "flax": "Flax/JAX", "np": "NumPy", "numpy": "NumPy"}
    source = frameworks.get(metadata.get("format", ""), "")
    shown = ", ".join(sorted(names)[:3]) + (", ..." if len(names) > 3 else "")
    tensors = f"{len(names)} tensor(s): {shown}" if names else "no tensors"
    return f"a {source + ' ' if source else ''}safetensors file without rnnkit metadata ({tensors})"


def _check_version(metadata: Mapping[str, str], fail: _Fail) -> None:
    found = metadata["format_version"]
    if not found.isdigit() or int(found) < 1:
        raise fail(
            f"its format_version {found!r} is unknown (this rnnkit reads version {FORMAT_VERSION})",
            f"the file is damaged or was not written by rnnkit; {_REWRITE}",
        )
    if int(found) > FORMAT_VERSION:
        writer = metadata.get("rnnkit_version", "a newer version")
        raise fail(
            f"it uses file format version {found} (written by rnnkit {writer}), but rnnkit "
            f"{_rnnkit_version()} reads format version {FORMAT_VERSION} at most",
            "upgrade rnnkit (pip install -U rnnkit)",
        )


def _check_file_kind(found: str, kind: str, fail: _Fail) -> None:
    if found == kind:
        return
    if found == "checkpoint":
        raise fail(
            "it is a training checkpoint, not a model file",
            "resume training from it with rnnkit.io.load_checkpoint, or save the trained model as a model file",
        )
    if found == "model":
        raise fail(
            "it is a model file (weights only), not a training checkpoint",
            "load it as a model; to resume training, pass a checkpoint written by save_checkpoint",
        )
    raise fail(f"its kind {found!r} is unknown (expected {kind!r})", f"the file is damaged; {_REWRITE}")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")
