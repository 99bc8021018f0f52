"""Tests of rnnkit.io: atomic writes, validated .safetensors files, training checkpoints.

Round trips are compared bit for bit; every corruption case asserts its specific message.
Files are crafted with plain ``safetensors`` (an independent writer) where rnnkit's own
writer would refuse to produce them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import safetensors.numpy as stnp
from safetensors import safe_open

from rnnkit.errors import ConfigError, DataError, DTypeError, ModelFileError
from rnnkit.io import (
    FORMAT_VERSION,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    check_tensors,
    load_checkpoint,
    read_tensors,
    restore_rng,
    save_checkpoint,
    write_tensors,
)

# --------------------------------------------------------------------------- helpers


def documented_sha256(tensors: dict[str, np.ndarray], document_json: str) -> str:
    """The checksum as the file format documents it, computed independently of rnnkit."""
    names = sorted(tensors)
    manifest = [document_json, [[n, tensors[n].dtype.name, list(tensors[n].shape)] for n in names]]
    h = hashlib.sha256(json.dumps(manifest, ensure_ascii=False).encode("utf-8"))
    for n in names:
        a = tensors[n]
        h.update(np.asarray(a, dtype=a.dtype.newbyteorder("<"), order="C").tobytes())
    return h.hexdigest()


def craft(path, tensors, *, document="{}", **metadata_overrides) -> None:
    """Write a file with plain safetensors: valid rnnkit metadata unless overridden (None drops a key)."""
    metadata = {
        "format": "rnnkit",
        "format_version": "1",
        "kind": "model",
        "rnnkit_version": "0.1.0",
        "document": document,
        "sha256": documented_sha256(tensors, document),
    }
    metadata.update(metadata_overrides)
    stnp.save_file(tensors, str(path), metadata={k: v for k, v in metadata.items() if v is not None})


def sample_tensors(rng) -> dict[str, np.ndarray]:
    return {
        "layers.0.cell.W_ih": rng.standard_normal((8, 3)).astype(np.float32),
        "layers.0.cell.b_ih": rng.standard_normal(8),
        "vocab.ids": rng.integers(0, 100, size=5),
    }


@pytest.fixture
def model_file(tmp_path, rng):
    path = tmp_path / "m.safetensors"
    tensors = sample_tensors(rng)
    write_tensors(path, tensors, {"config": {"hidden": 2}}, kind="model")
    return path, tensors


def header_length(data: bytes) -> int:
    return 8 + struct.unpack("<Q", data[:8])[0]


# --------------------------------------------------------------------------- round trips


def test_round_trip_every_allowed_dtype_is_bit_exact(tmp_path, rng):
    tensors = {
        "f32": np.array([1.5, -0.0, 1e-45, 3.4e38, np.nextafter(1, 2, dtype=np.float32)], dtype=np.float32),
        "f64": rng.standard_normal((3, 4)),
        "i64": np.array([-(2**63), 2**63 - 1, 0]),
        "i32": np.arange(-3, 3, dtype=np.int32).reshape(2, 3),
        "u8": np.arange(256, dtype=np.uint8),
        "bool": np.array([[True, False], [False, True]]),
        "scalar": np.array(2.5),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "big_endian": np.arange(4, dtype=">f4"),
    }
    path = tmp_path / "all.safetensors"
    write_tensors(path, tensors, {}, kind="model")
    loaded, _ = read_tensors(path, kind="model")
    assert sorted(loaded) == sorted(tensors)
    for name, a in tensors.items():
        assert loaded[name].dtype == a.dtype.newbyteorder("="), name
        assert loaded[name].shape == a.shape, name
        assert loaded[name].tobytes() == a.astype(a.dtype.newbyteorder("<")).tobytes(), name


def test_non_contiguous_inputs_are_written_correctly(tmp_path):
    base = np.arange(60, dtype=np.float64).reshape(6, 10)
    views = {
        "transposed": base.T,
        "strided": base[::2, 1::3],
        "reversed": base[::-1, ::-1],
        "fortran": np.asfortranarray(base),
        "broadcast": np.broadcast_to(np.arange(3, dtype=np.float32), (4, 3)),
        "column": base[:, 4],
    }
    assert not any(v.flags.c_contiguous for v in views.values())
    path = tmp_path / "views.safetensors"
    write_tensors(path, views, {}, kind="model")
    ours, _ = read_tensors(path, kind="model")
    plain = stnp.load_file(str(path))  # safetensors itself sees the right values too
    for name, view in views.items():
        np.testing.assert_array_equal(ours[name], view, err_msg=name)
        np.testing.assert_array_equal(plain[name], view, err_msg=name)


def test_document_round_trips_unicode_nested_values_and_big_ints(tmp_path):
    document = {
        "vocab": ["é", "中文", "🙂", "\n", '"quoted"'],
        "config": {"hidden_sizes": [16, 8], "dropout": 0.25, "bidirectional": True, "clip": None},
        "huge": 2**130 + 7,
        "name": "模型 ✓",
    }
    path = tmp_path / "doc.safetensors"
    write_tensors(path, {}, {**document, "shape": (2, 3)}, kind="model")
    _, loaded = read_tensors(path, kind="model")
    assert loaded == {**document, "shape": [2, 3]}  # tuples come back as lists


def test_file_is_plain_safetensors_with_documented_metadata(model_file):
    path, tensors = model_file
    plain = stnp.load_file(str(path))
    assert sorted(plain) == sorted(tensors)
    for name in tensors:
        assert plain[name].tobytes() == tensors[name].tobytes()
    with safe_open(str(path), framework="np") as f:
        metadata = f.metadata()
    assert metadata["format"] == "rnnkit"
    assert metadata["format_version"] == str(FORMAT_VERSION) == "1"
    assert metadata["kind"] == "model"
    assert metadata["rnnkit_version"] == __import__("rnnkit").__version__
    assert json.loads(metadata["document"]) == {"config": {"hidden": 2}}
    assert metadata["sha256"] == documented_sha256(tensors, metadata["document"])


@pytest.mark.parametrize(
    ("tensors", "document", "error", "match"),
    [
        ({"w": [1.0, 2.0]}, {}, DTypeError, r"tensor 'w' must be a NumPy array, got list"),
        ({"w": np.ones(2, np.float16)}, {}, DTypeError, r"tensor 'w' has dtype float16.*allowed: float32"),
        ({"w": np.array([None])}, {}, DTypeError, r"tensor 'w' has dtype object"),
        ({"w": np.array([1.0, np.nan])}, {}, DataError, r"tensor 'w' contains NaN or Inf.*refusing"),
        ({"__metadata__": np.ones(1)}, {}, ConfigError, r"other than '__metadata__'"),
        ({}, {"step": np.int64(3)}, ConfigError, r"document\['step'\] is a int64.*int\(\)/float\(\)"),
        ({}, {"best": float("inf")}, ConfigError, r"document\['best'\] is inf.*use None"),
        ({}, {"a": {1: 2}}, ConfigError, r"document\['a'\] has key 1 of type int; JSON keys must be str"),
        ({}, ["not", "a", "dict"], ConfigError, r"document must be a dict, got list"),
    ],
)
def test_write_rejects_what_could_not_be_read_back(tmp_path, tensors, document, error, match):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(error, match=match):
        write_tensors(path, tensors, document, kind="model")
    assert list(tmp_path.iterdir()) == []


def test_kind_argument_is_validated(tmp_path):
    with pytest.raises(ConfigError, match=r"kind must be one of \['model', 'checkpoint'\], got 'weights'"):
        write_tensors(tmp_path / "x.safetensors", {}, {}, kind="weights")
    with pytest.raises(ConfigError, match=r"kind must be one of"):
        read_tensors(tmp_path / "x.safetensors", kind="weights")


# --------------------------------------------------------------------------- damaged and foreign files


def test_missing_file_and_directory(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(ModelFileError, match=r"cannot load model file '.*nope\.safetensors': no such file"):
        read_tensors(missing, kind="model")
    with pytest.raises(ModelFileError, match=r"it is a directory"):
        read_tensors(tmp_path, kind="model")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"'.*empty\.safetensors': the file is empty \(0 bytes\)\. Hint: a copy"):
        read_tensors(path, kind="model")


@pytest.mark.parametrize(
    ("where", "match"),
    [
        ("tiny", r"the file is only 5 bytes, too short to be a safetensors file\. Hint: it was cut off"),
        ("in_header", r"it ends inside its header.*Hint: it was cut off"),
        ("after_header", r"its size does not match its header \(the file is truncated"),
        ("mid_data", r"its size does not match its header \(the file is truncated"),
        ("last_byte", r"its size does not match its header \(the file is truncated"),
    ],
)
def test_truncated_file(model_file, where, match):
    path, _ = model_file
    data = path.read_bytes()
    n = header_length(data)
    cut = {"tiny": 5, "in_header": n // 2, "after_header": n, "mid_data": (n + len(data)) // 2,
           "last_byte": len(data) - 1}[where]
    path.write_bytes(data[:cut])
    with pytest.raises(ModelFileError, match=match):
        read_tensors(path, kind="model")


def test_extra_trailing_bytes(model_file):
    path, _ = model_file
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ModelFileError, match=r"truncated or has extra bytes"):
        read_tensors(path, kind="model")


def test_flipped_data_byte_fails_the_checksum(model_file):
    path, _ = model_file
    data = bytearray(path.read_bytes())
    data[header_length(data) + 5] ^= 0x01  # one bit of one float in the data area
    path.write_bytes(bytes(data))
    stnp.load_file(str(path))  # safetensors alone does not notice
    with pytest.raises(ModelFileError, match=r"do not match the sha256 checksum.*corrupted\. Hint: do not use"):
        read_tensors(path, kind="model")


def test_flipped_byte_in_header_document_fails_the_checksum(model_file):
    path, _ = model_file
    data = bytearray(path.read_bytes())
    i = data.index(b'hidden\\":2') + len(b'hidden\\":')
    data[i : i + 1] = b"3"  # "hidden": 2 -> 3, still valid JSON
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"do not match the sha256 checksum"):
        read_tensors(path, kind="model")


def test_flipped_byte_in_header_structure(model_file):
    path, _ = model_file
    data = bytearray(path.read_bytes())
    data[data.index(b'"dtype"') + 1] ^= 0x20  # "dtype" -> "Dtype"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"its header is not valid safetensors JSON \(corrupted header\)"):
        read_tensors(path, kind="model")


def test_bad_tensor_offsets_in_header(tmp_path):
    header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,9]}}'
    path = tmp_path / "offsets.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(9))
    with pytest.raises(ModelFileError, match=r"impossible tensor shapes or offsets"):
        read_tensors(path, kind="model")


@pytest.mark.parametrize(
    ("prefix", "match"),
    [
        (b"", r"it is not a safetensors file \(its first 8 bytes are not a header length\)"),  # random bytes
        (b"\x89HDF\r\n\x1a\n", r"not a safetensors file; it looks like an HDF5 file \(a Keras \.h5 model\?\).*convert"),
        (b"PK\x03\x04", r"looks like a zip archive"),
        (b"\x80\x02", r"looks like a Python pickle.*never unpickles"),
    ],
)
def test_not_a_safetensors_file(tmp_path, prefix, match):
    path = tmp_path / "junk.bin"
    path.write_bytes(prefix + np.random.default_rng(1).bytes(500))
    with pytest.raises(ModelFileError, match=match):
        read_tensors(path, kind="model")


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        (None, r"it is a safetensors file without rnnkit metadata \(2 tensor\(s\): bias_ih_l0, weight_ih_l0\)"),
        ({"format": "pt"}, r"it is a PyTorch safetensors file without rnnkit metadata"),
    ],
)
def test_foreign_safetensors_file(tmp_path, metadata, match):
    path = tmp_path / "torch.safetensors"
    stnp.save_file({"weight_ih_l0": np.ones((4, 2), np.float32), "bias_ih_l0": np.ones(4, np.float32)},
                   str(path), metadata=metadata)
    with pytest.raises(ModelFileError, match=match + r".*, not an rnnkit file\. Hint: .*`rnnkit convert`"):
        read_tensors(path, kind="model")


def test_wrong_kind_both_ways(tmp_path, model_file):
    model_path, _ = model_file
    with pytest.raises(ModelFileError, match=r"cannot load checkpoint .*: it is a model file \(weights only\), not a"):
        read_tensors(model_path, kind="checkpoint")
    ckpt = tmp_path / "c.safetensors"
    write_tensors(ckpt, {}, {}, kind="checkpoint")
    with pytest.raises(ModelFileError, match=r"it is a training checkpoint, not a model file\. Hint: .*load_checkpoint"):
        read_tensors(ckpt, kind="model")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"format_version": "2", "rnnkit_version": "9.0"},
         r"file format version 2 \(written by rnnkit 9\.0\), but rnnkit .* reads format version 1 at most\. "
         r"Hint: upgrade rnnkit"),
        ({"format_version": "one"}, r"its format_version 'one' is unknown \(this rnnkit reads version 1\)"),
        ({"format_version": "0"}, r"its format_version '0' is unknown"),
        ({"kind": "tokenizer"}, r"its kind 'tokenizer' is unknown \(expected 'model'\)"),
        ({"sha256": None}, r"its rnnkit metadata lacks sha256"),
    ],
)
def test_bad_rnnkit_metadata(tmp_path, overrides, match):
    path = tmp_path / "meta.safetensors"
    craft(path, {"w": np.ones(2, np.float32)}, **overrides)
    with pytest.raises(ModelFileError, match=match):
        read_tensors(path, kind="model")


@pytest.mark.parametrize(
    ("document", "match"),
    [
        ('{"a": 1', r"its document metadata is not valid JSON \(Expecting"),
        ('{"a": NaN}', r"its document metadata is not valid JSON \(NaN is not valid JSON\)"),
        ("[1, 2]", r"its document metadata is a JSON list, not an object"),
    ],
)
def test_invalid_document(tmp_path, document, match):
    path = tmp_path / "doc.safetensors"
    craft(path, {"w": np.ones(2, np.float32)}, document=document)
    with pytest.raises(ModelFileError, match=match):
        read_tensors(path, kind="model")


def test_non_finite_tensor_is_named(tmp_path):
    path = tmp_path / "nan.safetensors"
    craft(path, {"ok": np.ones(3), "layers.0.cell.W_hh": np.array([[1, np.nan], [np.inf, 2]], np.float32)})
    with pytest.raises(ModelFileError, match=r"tensor 'layers\.0\.cell\.W_hh' contains 2 NaN or Inf value\(s\)\. "
                                             r"Hint: training diverged"):
        read_tensors(path, kind="model")


@pytest.mark.parametrize("dtype", [np.float16, np.int8, np.uint64])
def test_unsupported_dtype(tmp_path, dtype):
    path = tmp_path / "dtype.safetensors"
    craft(path, {"w": np.ones(2, dtype)})
    with pytest.raises(ModelFileError, match=r"tensor 'w' has dtype [FIU]\d+, which rnnkit files do not use "
                                             r"\(allowed: float32, float64, int64, int32, uint8, bool\)"):
        read_tensors(path, kind="model")


# --------------------------------------------------------------------------- check_tensors


def test_check_tensors_accepts_a_match(rng):
    tensors = sample_tensors(rng)
    check_tensors(tensors, {name: (a.shape, a.dtype) for name, a in tensors.items()}, "m.safetensors")


def test_check_tensors_lists_every_problem(rng):
    tensors = sample_tensors(rng)
    tensors["stray"] = np.ones(1)
    expected = {
        "layers.0.cell.W_ih": ((8, 4), np.float32),  # wrong shape
        "layers.0.cell.b_ih": ((8,), np.float32),  # wrong dtype (file has float64)
        "vocab.ids": ((5,), np.int64),  # fine
        "layers.0.cell.W_hh": ((8, 2), np.float32),  # missing
    }
    pattern = (
        r"'m\.safetensors' does not match the model it is loaded into: "
        r"missing tensors: layers\.0\.cell\.W_hh; unexpected tensors: stray; "
        r"'layers\.0\.cell\.W_ih' should be \(8, 4\) float32 but the file has \(8, 3\) float32; "
        r"'layers\.0\.cell\.b_ih' should be \(8,\) float32 but the file has \(8,\) float64\. "
        r"Hint: the file was written for a different configuration"
    )
    with pytest.raises(ModelFileError, match=pattern):
        check_tensors(tensors, expected, "m.safetensors")


# --------------------------------------------------------------------------- checkpoints


def _checkpoint_args(rng) -> dict:
    params = {"layers.0.cell.W_ih": rng.standard_normal((8, 3)).astype(np.float32),
              "layers.0.cell.W_hh": rng.standard_normal((2, 8)).astype(np.float32).T}  # a transposed view
    data_rng = np.random.default_rng(12345)
    data_rng.random(7)  # advance: the state is mid-stream
    return {
        "params": params,
        "optimizer_state": {"config": {"lr": 1e-3, "betas": [0.9, 0.999]}, "step": 41,
                            "arrays": {"m.layers.0.cell.W_ih": rng.standard_normal((8, 3)).T,  # non-contiguous
                                       "v.layers.0.cell.W_ih": rng.random((8, 3))}},
        "rng_states": {"data": data_rng.bit_generator.state,
                       "dropout": np.random.Generator(np.random.MT19937(3)).bit_generator.state,
                       "philox": np.random.Generator(np.random.Philox(4)).bit_generator.state},
        "progress": {"epoch": 2, "step": 41, "batch": 5, "best_val_loss": None, "history": [1.5, 1.25]},
        "config": {"model": {"cell": "lstm", "hidden": 2}, "seed": 0, "name": "naïve"},
        "extra_arrays": {"carried.h": rng.standard_normal((4, 2)), "carried.c": rng.standard_normal((4, 2))},
    }


def test_checkpoint_round_trip_is_exact(tmp_path, rng):
    args = _checkpoint_args(rng)
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, **args)
    ckpt = load_checkpoint(path)

    for group in ("params", "extra_arrays"):
        loaded = getattr(ckpt, group)
        assert sorted(loaded) == sorted(args[group])
        for name, a in args[group].items():
            assert loaded[name].dtype == a.dtype and loaded[name].tobytes() == np.ascontiguousarray(a).tobytes()
    opt = ckpt.optimizer_state
    assert {k: v for k, v in opt.items() if k != "arrays"} == {"config": {"lr": 1e-3, "betas": [0.9, 0.999]},
                                                               "step": 41}
    for name, a in args["optimizer_state"]["arrays"].items():
        np.testing.assert_array_equal(opt["arrays"][name], a)
        assert opt["arrays"][name].dtype == a.dtype
    assert ckpt.progress == args["progress"]
    assert ckpt.config == args["config"]
    with pytest.raises(AttributeError):
        ckpt.progress = {}  # frozen


def test_pcg64_state_with_ints_above_2_64_round_trips_exactly(tmp_path, rng):
    args = _checkpoint_args(rng)
    saved = args["rng_states"]["data"]
    assert saved["state"]["state"] > 2**64 and saved["state"]["inc"] > 2**64  # genuinely 128-bit
    save_checkpoint(tmp_path / "c.safetensors", **args)
    assert load_checkpoint(tmp_path / "c.safetensors").rng_states["data"] == saved


@pytest.mark.parametrize("bit_generator", ["PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"])
def test_restored_generator_makes_identical_next_draws(tmp_path, bit_generator):
    original = np.random.Generator(getattr(np.random, bit_generator)(2024))
    original.random(11)
    original.integers(0, 10, size=3)  # leaves a buffered uint32 in some generators
    save_checkpoint(tmp_path / "c.safetensors", params={}, optimizer_state={}, progress={}, config={},
                    rng_states={"g": original.bit_generator.state})
    restored = restore_rng(load_checkpoint(tmp_path / "c.safetensors").rng_states["g"])
    np.testing.assert_array_equal(restored.random(100), original.random(100))
    np.testing.assert_array_equal(restored.integers(0, 2**62, size=50), original.integers(0, 2**62, size=50))
    np.testing.assert_array_equal(restored.permutation(64), original.permutation(64))


@pytest.mark.parametrize(
    ("override", "error", "match"),
    [
        ({"rng_states": {"data": np.random.default_rng(0)}}, ConfigError,
         r"rng_states\['data'\] is a Generator; pass its state instead: rng\.bit_generator\.state"),
        ({"rng_states": {"data": {"bit_generator": "Xoshiro"}}}, ConfigError,
         r"rng_states\['data'\]: state must be a bit_generator\.state dict .* got 'Xoshiro'"),
        ({"rng_states": {"data": {"bit_generator": "PCG64", "state": 3}}}, ConfigError,
         r"rng_states\['data'\]: state is not a valid PCG64 state"),
        ({"params": {0: np.ones(2)}}, ConfigError, r"params has key 0; array names must be non-empty strings"),
        ({"params": [np.ones(2)]}, ConfigError, r"params must be a dict, got list"),
        ({"progress": {"best_val_loss": float("inf")}}, ConfigError,
         r"document\['progress'\]\['best_val_loss'\] is inf, which JSON cannot store; use None"),
        ({"extra_arrays": {"h": np.array([np.nan])}}, DataError, r"tensor 'extra/h' contains NaN or Inf"),
    ],
)
def test_save_checkpoint_rejects_bad_arguments(tmp_path, rng, override, error, match):
    path = tmp_path / "c.safetensors"
    with pytest.raises(error, match=match):
        save_checkpoint(path, **{**_checkpoint_args(rng), **override})
    assert not path.exists()


def test_load_checkpoint_rejects_model_files_and_foreign_layouts(tmp_path, model_file):
    model_path, _ = model_file
    with pytest.raises(ModelFileError, match=r"it is a model file \(weights only\), not a training checkpoint"):
        load_checkpoint(model_path)
    path = tmp_path / "c.safetensors"
    write_tensors(path, {"params/w": np.ones(1)}, {"progress": {}}, kind="checkpoint")
    with pytest.raises(ModelFileError, match=r"its document lacks optimizer_state, rng_states, config"):
        load_checkpoint(path)
    document = {"optimizer_state": {}, "rng_states": {}, "progress": {}, "config": {}}
    write_tensors(path, {"weights/w": np.ones(1)}, document, kind="checkpoint")
    with pytest.raises(ModelFileError, match=r"tensor 'weights/w' is not under params/, optimizer/ or extra/"):
        load_checkpoint(path)
    write_tensors(path, {}, {**document, "rng_states": {"g": {"bit_generator": "PCG64"}}}, kind="checkpoint")
    with pytest.raises(ModelFileError, match=r"its random generator state 'g' is invalid"):
        load_checkpoint(path)


def test_restore_rng_rejects_non_states():
    with pytest.raises(ConfigError, match=r"'bit_generator' is one of \['MT19937', 'PCG64', .* got None in list"):
        restore_rng([1, 2])


# --------------------------------------------------------------------------- atomicity


def test_atomic_write_replaces_and_keeps_permissions(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old ✓")
    os.chmod(path, 0o640)
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["f.txt"]


def test_exception_inside_atomic_write_leaves_old_file_and_no_temp_files(tmp_path):
    path = tmp_path / "model.safetensors"
    atomic_write_bytes(path, b"version 1" * 1000)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(path) as f:
            f.write(b"half of version 2")
            raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_atomic_write_argument_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"mode must be 'wb' or 'w'.*got 'ab'"):
        with atomic_write(tmp_path / "x", mode="ab"):
            pass
    with pytest.raises(FileNotFoundError, match=r"directory .*missing does not exist; create it first"):
        atomic_write_bytes(tmp_path / "missing" / "x", b"")


# A child process overwrites one ~5 MB checkpoint in a loop; version k has params all equal to k
# (cheap to make, so most of the child's time is spent writing: a non-atomic writer fails this
# test in about half the rounds).
_WRITER = """
import sys
import numpy as np
from rnnkit.io import save_checkpoint
path, step = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
while True:
    w = np.full(1_250_000, step, dtype=np.float32)
    save_checkpoint(path, params={"w": w}, optimizer_state={}, rng_states={}, progress={"step": step}, config={})
    step += 1
"""


@pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")
def test_sigkill_while_overwriting_never_leaves_an_unloadable_checkpoint(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    version = lambda step: np.full(1_250_000, step, dtype=np.float32)  # noqa: E731
    save_checkpoint(path, params={"w": version(0)}, optimizer_state={}, rng_states={}, progress={"step": 0},
                    config={})
    delays = np.random.default_rng(7).uniform(0.05, 0.4, size=6)
    last, advanced = 0, 0
    for round_, delay in enumerate(delays, start=1):
        first = 1000 * round_
        child = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(first)], stdout=subprocess.PIPE)
        assert child.stdout.readline() == b"ready\n"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL

        ckpt = load_checkpoint(path)  # must not raise
        step = ckpt.progress["step"]
        assert step == last or step >= first, (step, last, first)
        np.testing.assert_array_equal(ckpt.params["w"], version(step))
        advanced += step != last
        last = step
    assert advanced >= 1  # the children really overwrote the file
    debris = [name for name in os.listdir(tmp_path) if name != path.name]
    assert all(re.fullmatch(r"\.ckpt\.safetensors\.[0-9a-f]{12}\.tmp", name) for name in debris), debris
