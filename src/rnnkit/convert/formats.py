"""Model files of every framework: which format a file is in (:func:`detect`) and what it holds (:func:`describe`).

Formats, recognised by their content (the extension only for ONNX and the legacy torch pickle):

=============  ==============================================================================
rnnkit         ``.safetensors`` written by rnnkit (:func:`rnnkit.io.model.save_model`)
safetensors    any other ``.safetensors``: tensors under PyTorch names
torch          ``.pt``/``.pth`` from ``torch.save(state_dict)``, read with ``weights_only=True`` only
keras          ``.keras`` (a zip of ``config.json`` and ``model.weights.h5``)
keras-h5       ``.h5`` full model (tf.keras 2 or Keras 3 legacy) or ``.weights.h5`` (weights only)
onnx           ``.onnx``
tf1            a TensorFlow checkpoint: its prefix, or its ``.index`` / ``.data-*`` file
=============  ==============================================================================

``describe`` reads Keras files without Keras (zip + JSON + h5py) and state_dicts with
``torch.load(weights_only=True)`` or the safetensors header; for a state_dict it also shows the
architecture :mod:`.architecture` reads off the tensor names and shapes.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError, RnnkitError
from ..models import Sequential
from .architecture import Module, assumptions, infer_modules, order_chain

FORMAT_NAMES = {
    "rnnkit": "rnnkit model file", "safetensors": "safetensors file (not rnnkit's)", "torch": "PyTorch state_dict file",
    "keras": "Keras 3 .keras file", "keras-h5": "Keras HDF5 file", "onnx": "ONNX model", "tf1": "TensorFlow checkpoint",
}
KNOWN = ".safetensors, .pt/.pth, .keras, .h5, .weights.h5, .onnx or a TF checkpoint prefix"
HDF5_MAGIC, ZIP_MAGIC = b"\x89HDF\r\n\x1a\n", b"PK\x03\x04"
LISTED = 40  # tensors or variables listed in a summary before "... and N more"


# ---- recognising a file -------------------------------------------------------------------------


def tf1_prefix(path: str | Path) -> str | None:
    """The checkpoint prefix ``path`` names (the prefix itself, its ``.index`` or a ``.data-*`` shard), else None."""
    text = re.sub(r"\.(index|data-\d+-of-\d+)$", "", str(path))
    return text if Path(text + ".index").is_file() else None


def detect(path: str | Path) -> str:
    """The format of a model file (a key of ``FORMAT_NAMES``), from its first bytes and extension."""
    path = Path(path)
    if tf1_prefix(path):
        return "tf1"
    if not path.is_file():
        if path.is_dir():
            raise ModelFileError(f"{path}: is a directory; pass a model file ({KNOWN})")
        raise FileNotFoundError(2, "no such file", str(path))
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise ModelFileError(f"{path}: the file is empty (0 bytes); a copy or download was interrupted")
    if head.startswith(ZIP_MAGIC):
        try:
            names = zipfile.ZipFile(path).namelist()
        except zipfile.BadZipFile as err:
            raise ModelFileError(f"{path}: a damaged zip archive ({err}); re-save or download it again") from None
        if "config.json" in names:
            return "keras"
        if any(name.endswith("data.pkl") for name in names):
            return "torch"
        raise ModelFileError(f"{path}: a zip archive that is neither a .keras file nor a torch.save file")
    if head.startswith(HDF5_MAGIC):
        return "keras-h5"
    if _safetensors_header(path, head) is not None:
        return "rnnkit" if _safetensors_header(path, head).get("__metadata__", {}).get("format") == "rnnkit" else "safetensors"
    if head[:1] == b"\x80" and path.suffix.lower() in (".pt", ".pth", ".bin", ".ckpt"):
        return "torch"  # torch.save's legacy (non-zip) format: a pickle protocol header
    if path.suffix.lower() == ".onnx":
        return "onnx"
    raise ModelFileError(f"{path}: not a model file rnnkit recognises (it starts with {head[:8]!r}); expected {KNOWN}")


def _safetensors_header(path: Path, head: bytes) -> dict[str, Any] | None:
    """A safetensors file's JSON header (tensor entries and ``__metadata__``), or None if it is not one."""
    if len(head) < 9 or head[8:9] != b"{":
        return None
    (n,) = struct.unpack("<Q", head[:8])
    if n > path.stat().st_size - 8:
        return None
    with open(path, "rb") as f:
        f.seek(8)
        try:
            header = json.loads(f.read(n))
        except ValueError:
            return None
    return header if isinstance(header, dict) else None


# ---- describing a file ------------------------------------------------------------------------


def describe(path: str | Path) -> dict[str, Any]:
    """What a model file holds, as JSON data: ``format``, a human ``summary`` (list of lines) and details.

    Details by format: ``tensors`` ``{name: {"shape", "dtype"}}`` and the guessed ``architecture``
    (state_dicts); ``layers`` (rnnkit, Keras); ``nodes``/``inputs``/``outputs``/``opset`` (ONNX);
    ``variables`` (TF checkpoints). Raises ModelFileError for a damaged or unknown file.
    """
    fmt = detect(path)
    try:
        details = DESCRIBERS[fmt](Path(path))
    except (RnnkitError, FileNotFoundError):
        raise
    except Exception as err:  # h5py, zipfile, protobuf, torch, JSON: every parser has its own errors
        raise ModelFileError(f"{path}: a damaged {FORMAT_NAMES[fmt]} ({type(err).__name__}: {err})") from None
    return {"format": fmt, **details}


def _describe_rnnkit(path: Path) -> dict[str, Any]:
    from ..io.model import load_model

    model, task = load_model(path)
    return {"task": task.get("name"), "parameters": model.num_params(),
            "layers": [{"class": type(layer).__name__, "config": layer.get_config()} for layer in model.layers],
            "summary": [f"{FORMAT_NAMES['rnnkit']}, task {task.get('name') or '(none)'}", *model.summary().splitlines()]}


def state_dict_modules(shapes: dict[str, tuple[int, ...]], fmt: str) -> tuple[list[Module], list[str]]:
    """The modules a torch-named state_dict holds, in order, and a note if the order had to be inferred."""
    modules = infer_modules(shapes)
    if fmt != "safetensors":
        return modules, []
    modules, note = order_chain(modules)
    return modules, [note] if note else []


def _tensor_details(fmt: str, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str]) -> dict[str, Any]:
    """The listing and guessed architecture of a torch-named state_dict."""
    kind = FORMAT_NAMES[fmt]
    total = sum(int(np.prod(s)) for s in shapes.values())
    lines = [f"{kind}: {len(shapes)} tensors, {total:,} values"]
    lines += [f"  {name}  {dtypes[name]}  {list(shape)}" for name, shape in list(shapes.items())[:LISTED]]
    lines += [f"  ... and {len(shapes) - LISTED} more"] if len(shapes) > LISTED else []
    details: dict[str, Any] = {"tensors": {n: {"shape": list(s), "dtype": dtypes[n]} for n, s in shapes.items()}}
    try:
        modules, order_note = state_dict_modules(shapes, fmt)
    except RnnkitError as err:
        details["architecture"] = None
        lines.append(f"not convertible as a PyTorch state_dict: {err}")
    else:
        details["architecture"] = [m.describe() for m in modules]
        lines += ["looks like (convert with `rnnkit convert`):", *(f"  {m.describe()}" for m in modules)]
        lines += [f"note: {note}" for note in order_note + assumptions(modules)]
    return {**details, "summary": lines}


def _describe_safetensors(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        header = _safetensors_header(path, f.read(16)) or {}
    entries = {name: e for name, e in header.items() if name != "__metadata__"}
    shapes = {name: tuple(e["shape"]) for name, e in entries.items()}
    details = _tensor_details("safetensors", shapes, {name: e["dtype"] for name, e in entries.items()})
    return {"metadata": header.get("__metadata__") or {}, **details}


def read_state_dict_arrays(path: Path, fmt: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """The tensors of a torch or foreign safetensors state_dict as arrays, plus notes (nested dicts, half floats)."""
    if fmt == "safetensors":
        from safetensors.numpy import load_file

        try:
            return load_file(str(path)), []
        except Exception as err:  # SafetensorError, or a dtype NumPy lacks (bfloat16)
            raise ModelFileError(f"{path}: cannot read its tensors with NumPy ({type(err).__name__}: {err})") from None
    from .torch import read_state_dict

    state, notes = read_state_dict(path), []
    if not all(hasattr(v, "detach") for v in state.values()):  # a checkpoint dict holding the state_dict
        nested = [k for k, v in state.items() if isinstance(v, dict) and v and all(hasattr(t, "detach") for t in v.values())]
        if len(nested) != 1:
            raise ModelFileError(f"{path}: holds {sorted(map(str, state))[:10]} rather than a state_dict of tensors, and "
                                 f"not exactly one nested state_dict (found {nested}); save module.state_dict()")
        notes.append(f"reading the state_dict stored under key {nested[0]!r}")
        state = state[nested[0]]
    half = sorted({str(t.dtype).removeprefix("torch.") for t in state.values() if t.is_floating_point()
                   and t.dtype.itemsize < 4})  # float16/bfloat16: rnnkit computes in float32/float64
    if half:
        notes.append(f"{' and '.join(half)} tensors converted to float32")
    return {name: (t.float() if t.is_floating_point() and t.dtype.itemsize < 4 else t).detach().cpu().numpy()
            for name, t in state.items()}, notes


def _describe_torch(path: Path) -> dict[str, Any]:
    arrays, notes = read_state_dict_arrays(path, "torch")
    details = _tensor_details("torch", {n: a.shape for n, a in arrays.items()},
                              {n: a.dtype.name for n, a in arrays.items()})
    return {**details, "summary": details["summary"] + [f"note: {note}" for note in notes]}


def _keras_layer(entry: dict[str, Any]) -> dict[str, Any]:
    """A Keras config entry -> ``{"name", "class", options that matter for conversion}``."""
    config, cls = entry.get("config", {}), entry.get("class_name")
    keys = ("units", "input_dim", "output_dim", "activation", "return_sequences", "reset_after", "mask_zero",
            "rate", "merge_mode", "go_backwards", "stateful")
    options = {k: config[k] for k in keys if k in config and (config[k] or k not in ("go_backwards", "stateful"))}
    if cls == "Bidirectional":
        options["layer"] = _keras_layer(config["layer"])
    return {"name": config.get("name"), "class": cls, **options}


def _keras_layer_line(layer: dict[str, Any]) -> str:
    """``  bi: Bidirectional (LSTM units=64 ...) merge_mode=concat`` for one :func:`_keras_layer` entry."""
    def options(entry: dict[str, Any]) -> str:
        return " ".join(f"{k}={v}" for k, v in entry.items() if k not in ("name", "class", "layer"))

    inner = f" ({layer['layer']['class']} {options(layer['layer'])})" if "layer" in layer else ""
    return f"  {layer['name']}: {layer['class']}{inner} {options(layer)}".rstrip()


def _h5_datasets(group: Any) -> dict[str, list[int]]:
    """Every dataset under an h5py group, ``{path: shape}``, optimizer state left out."""
    found: dict[str, list[int]] = {}
    group.visititems(lambda name, obj: found.update({name: list(obj.shape)}) if hasattr(obj, "shape") else None)
    return {name: shape for name, shape in found.items() if not name.startswith("optimizer")}


def _keras_details(kind: str, model_config: dict[str, Any] | None, weights: dict[str, list[int]]) -> dict[str, Any]:
    total = sum(int(np.prod(s)) for s in weights.values())
    lines = [kind]
    layers = [_keras_layer(e) for e in model_config["config"].get("layers", [])] if model_config else []
    if model_config:
        lines.append(f"{model_config.get('class_name')} model {model_config['config'].get('name')!r}, {len(layers)} layers:")
        lines += [_keras_layer_line(layer) for layer in layers]
    else:
        lines.append("weights only: no architecture (convert the .keras file, or use rnnkit.convert.load_keras_file("
                     "path, like=model))")
    lines.append(f"{len(weights)} weight tensors, {total:,} values")
    return {"model_class": model_config.get("class_name") if model_config else None, "layers": layers,
            "weights": weights, "summary": lines}


def _describe_keras(path: Path) -> dict[str, Any]:
    import h5py

    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in archive.namelist() else {}
        with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as f:
            weights = _h5_datasets(f)
    kind = f"{FORMAT_NAMES['keras']} (Keras {metadata.get('keras_version', '?')})"
    return {"keras_version": metadata.get("keras_version"), **_keras_details(kind, config, weights)}


def _describe_keras_h5(path: Path) -> dict[str, Any]:
    import h5py

    with h5py.File(path, "r") as f:
        version = f.attrs.get("keras_version")
        version = version.decode() if isinstance(version, bytes) else version
        config = f.attrs.get("model_config")
        config = json.loads(config.decode() if isinstance(config, bytes) else config) if config is not None else None
        weights = _h5_datasets(f["model_weights"] if "model_weights" in f else f)
    kind = f"{FORMAT_NAMES['keras-h5']} ({'full model' if config else 'weights only'}, Keras {version or '?'})"
    return {"keras_version": version, **_keras_details(kind, config, weights)}


def _describe_onnx(path: Path) -> dict[str, Any]:
    from .onnx_import import from_onnx, load_onnx
    from .onnx_node import import_onnx

    model = load_onnx(path)
    helper, graph = import_onnx().helper, model.graph
    constants = {t.name for t in graph.initializer}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)

    def value_info(v: Any) -> dict[str, Any]:
        t = v.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        return {"name": v.name, "dtype": helper.tensor_dtype_to_np_dtype(t.elem_type).name, "shape": dims}

    inputs = [value_info(v) for v in graph.input if v.name not in constants]
    outputs = [value_info(v) for v in graph.output]
    recurrent = [{"op": n.op_type, "name": n.name, **{a.name: helper.get_attribute_value(a) for a in n.attribute
                  if a.name in ("hidden_size", "direction", "layout", "linear_before_reset")}}
                 for n in graph.node if n.op_type in ("RNN", "GRU", "LSTM")]
    recurrent = [{k: v.decode() if isinstance(v, bytes) else v for k, v in r.items()} for r in recurrent]
    counts = Counter(n.op_type for n in graph.node)
    lines = [f"{FORMAT_NAMES['onnx']}: opset {opset}, producer {model.producer_name or '?'} {model.producer_version}".rstrip(),
             *(f"  input {v['name']}: {v['dtype']} {v['shape']}" for v in inputs),
             *(f"  output {v['name']}: {v['dtype']} {v['shape']}" for v in outputs),
             f"  {len(graph.node)} nodes: " + ", ".join(f"{op} x{n}" for op, n in counts.most_common()),
             *(f"  {r['op']} {r['name']!r}: " + " ".join(f"{k}={v}" for k, v in r.items() if k not in ("op", "name"))
               for r in recurrent)]
    try:
        converted = from_onnx(model)
    except RnnkitError as err:
        lines.append(f"not convertible: {err}")
    else:
        layers = converted.layers if isinstance(converted, Sequential) else [converted]
        lines.append("converts to rnnkit layers: " + ", ".join(type(layer).__name__ for layer in layers))
    return {"opset": opset, "producer": model.producer_name, "inputs": inputs, "outputs": outputs,
            "nodes": dict(counts), "recurrent_nodes": recurrent, "summary": lines}


def _describe_tf1(path: Path) -> dict[str, Any]:
    prefix = tf1_prefix(path)
    try:
        import tensorflow as tf
    except ImportError:
        return {"prefix": prefix, "variables": None,
                "summary": [f"{FORMAT_NAMES['tf1']} {prefix}", "TensorFlow is not installed, so its variables cannot "
                            "be listed or converted: pip install rnnkit[tf]"]}
    variables = {name: list(shape) for name, shape in tf.train.list_variables(prefix)}
    cells = sorted(n.removesuffix("/kernel") for n in variables if n.endswith("/kernel") and not n.endswith("projection/kernel")
                   and n.removesuffix("kernel") + "bias" in variables)
    lines = [f"{FORMAT_NAMES['tf1']} {prefix}: {len(variables)} variables"]
    lines += [f"  {name}  {shape}" for name, shape in list(variables.items())[:LISTED]]
    lines += [f"  ... and {len(variables) - LISTED} more"] if len(variables) > LISTED else []
    lines += [f"LSTMCell-like scopes (kernel + bias): {cells}" if cells else "no LSTMCell scope (kernel + bias) found"]
    return {"prefix": prefix, "variables": variables, "lstm_scopes": cells, "summary": lines}


DESCRIBERS = {"rnnkit": _describe_rnnkit, "safetensors": _describe_safetensors, "torch": _describe_torch,
              "keras": _describe_keras, "keras-h5": _describe_keras_h5, "onnx": _describe_onnx, "tf1": _describe_tf1}
