"""``rnnkit convert`` end to end, and ``rnnkit info`` on what it reads and writes.

The main path runs in subprocesses (``python -m rnnkit ...``) as a user runs it; the error cases
also run in-process through ``rnnkit.cli.main.main``, which is what the console script calls. Every
error must exit non-zero with exactly one line on stderr and no traceback.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rnnkit.io.model import load_model
from tests.cli.helpers import assert_one_line_error, rnnkit, run_main


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A PyTorch text model's state_dict (random weights and biases) and the module that wrote it."""
    d = tmp_path_factory.mktemp("convert_cli")
    torch.manual_seed(0)
    net = torch.nn.ModuleDict({"emb": torch.nn.Embedding(10, 4), "gru": torch.nn.GRU(4, 5, batch_first=True),
                               "fc": torch.nn.Linear(5, 2)})
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-0.5, 0.5)
    torch.save(net.state_dict(), d / "net.pt")
    return d, net


def test_convert_state_dict_then_onnx_then_info(work):
    d, net = work
    result = rnnkit("convert", "net.pt", "net.safetensors", "--arch", "embedding", "--arch", "gru:hidden=5,last",
                    "--arch", "linear:activation=softmax", cwd=d)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == ("converted net.pt (PyTorch state_dict) -> net.safetensors (rnnkit model): "
                                             "3 layers, 217 parameters")
    assert "  1 GRU: input_size=4 hidden_size=5 return_sequences=False reset_after=True" in result.stdout
    ids = np.random.default_rng(0).integers(0, 10, (3, 6))
    with torch.no_grad():
        _, h_n = net["gru"](net["emb"](torch.from_numpy(ids)))
        expected = torch.softmax(net["fc"](h_n[-1]), -1).numpy()
    np.testing.assert_allclose(load_model(d / "net.safetensors")[0].forward(ids), expected, atol=1e-5)

    result = rnnkit("convert", "net.safetensors", "net.onnx", "--opset", "18", cwd=d)
    assert result.returncode == 0, result.stderr
    assert "-> net.onnx (ONNX): 3 layers, 217 parameters" in result.stdout

    info = rnnkit("info", "net.safetensors", cwd=d)
    assert info.returncode == 0, info.stderr
    assert "task: converted" in info.stdout and "source: net.pt" in info.stdout
    info = rnnkit("info", "net.pt", cwd=d)
    assert info.returncode == 0, info.stderr
    assert "not an rnnkit model file" in info.stdout and "nn.GRU input=4 hidden=5" in info.stdout


def test_errors_are_one_line_in_a_subprocess(work):
    d, _ = work
    result = rnnkit("convert", "net.pt", "x.safetensors", "--arch", "embedding", "--arch", "lstm", "--arch", "linear",
                    cwd=d)
    assert_one_line_error(result, "rnnkit: error: --arch 'lstm': module 'gru' holds an nn.GRU")
    result = rnnkit("convert", "missing.pt", "x.safetensors", cwd=d)
    assert_one_line_error(result, "rnnkit: error: file not found: missing.pt")


@pytest.mark.parametrize("args, fragments", [
    (["net.pt", "x.txt"], ["cannot write 'x.txt': unknown extension '.txt'"]),
    (["net.pt", "x.safetensors", "--arch", "embedding", "--arch", "gru:hidden=7", "--arch", "linear"],
     ["hidden=7, but the tensors of module 'gru' give hidden=5"]),
    (["net.pt", "x.safetensors", "--arch", "gru"], ["--arch was given 1 time(s) but the file holds 3 module(s)"]),
    (["net.pt", "x.pt", "--opset", "17"], ["--opset applies to .onnx output only"]),
    (["net.pt", "x.onnx", "--opset", "9"], ["Invalid value for '--opset'"]),
    (["corrupt.pt", "x.safetensors"], ["corrupt.pt: a damaged zip archive"]),
    (["notes.onnx", "x.safetensors"], ["notes.onnx: not an ONNX model"]),
    (["conv.pt", "x.safetensors"], ["module '0' with parameters", "is not an nn.RNN/GRU/LSTM"]),
])
def test_bad_input_exits_with_one_line(work, capsys, monkeypatch, args, fragments):
    d, _ = work
    monkeypatch.chdir(d)
    monkeypatch.delenv("RNNKIT_DEBUG", raising=False)
    (d / "corrupt.pt").write_bytes((d / "net.pt").read_bytes()[:200])
    (d / "notes.onnx").write_text("not a protobuf")
    torch.save(torch.nn.Sequential(torch.nn.Conv1d(2, 3, 2)).state_dict(), d / "conv.pt")
    assert_one_line_error(run_main("convert", *args, capsys=capsys), *fragments)


def test_help_has_examples(tmp_path):
    result = rnnkit("convert", "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "rnnkit convert lstm.pt lstm.safetensors" in result.stdout
    assert "--arch SPEC" in result.stdout and "--opset" in result.stdout
