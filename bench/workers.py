"""One measurement, run INSIDE a fresh child process for a single library.

    python -m bench.workers '{"library": "rnnkit", "cell": "lstm", "config": "charlm-128",
                              "mode": "train", "threads": 2, "reps": 30, "budget_s": 1.0,
                              "warmup_s": 0.2, "stream_steps": 200, "seed": 0}'

builds the model, warms up, times up to ``reps`` repetitions (at least ``MIN_REPS``, more while
``budget_s`` lasts) and prints one JSON object on stdout: median and min milliseconds per unit (a
training step, a forward pass, or one streaming step), the growth of the process' peak RSS while
building and running the model, a checksum of the results and the BLAS it ran on.

Both libraries get identical numbers: the weights (PyTorch's uniform init, drawn with NumPy from
``seed``), the input x (B, T, D) and the output gradient g (B, T, H). The checksums
(``sum(out * g)``, ``sum(dx * x)``) let the driver confirm that both computed the same thing.

libraries: ``rnnkit`` (never imports torch), ``torch`` (nn.LSTM/GRU/RNN, batch_first), and, for
streaming only, ``torch-cell`` (nn.LSTMCell/GRUCell/RNNCell). The driver fixes the thread count
through OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS; torch also gets
``torch.set_num_threads``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable

import numpy as np

from .configs import CONFIGS, GATES, STREAM, Config
from .gemm import blas_info

MIN_REPS = 3  # timed repetitions even when one exceeds the budget
MAX_WARMUP_CALLS = 50

Weights = dict[str, np.ndarray]  # one layer: W_ih (G*H, D), W_hh (G*H, H), b_ih, b_hh (G*H,)
Run = Callable[[], tuple[np.ndarray, np.ndarray | None]]  # one timed unit -> (out, dx or None)


# ---------------------------------------------------------------------------------------------
# Shared data: the same numbers for every library
# ---------------------------------------------------------------------------------------------


def make_weights(config: Config, gates: int, rng: np.random.Generator) -> list[Weights]:
    """PyTorch's init for each layer: every entry uniform in [-1/sqrt(H), 1/sqrt(H)], float32."""
    weights = []
    for D, H in config.layer_sizes():
        k = 1.0 / np.sqrt(H)
        shapes = {"W_ih": (gates * H, D), "W_hh": (gates * H, H), "b_ih": (gates * H,), "b_hh": (gates * H,)}
        weights.append({n: rng.uniform(-k, k, size=s).astype(np.float32) for n, s in shapes.items()})
    return weights


def make_data(spec: dict) -> tuple[Config, list[Weights], np.ndarray, np.ndarray]:
    """(config, weights, x, g): x (B, T, D) ~ N(0, 1) and g (B, T, H_last) ~ N(0, 1), float32.

    For streaming, x and g hold ``stream_steps`` steps of batch 1: x (K, 1, D), g (K, 1, H).
    """
    config = STREAM if spec["mode"] == "stream" else CONFIGS[spec["config"]]
    rng = np.random.default_rng(spec["seed"])
    weights = make_weights(config, GATES[spec["cell"]], rng)
    if spec["mode"] == "stream":
        lead = (spec["stream_steps"], 1)
    else:
        lead = (config.batch, config.time)
    x = rng.standard_normal(lead + (config.input_size,), dtype=np.float32)
    g = rng.standard_normal(lead + (config.hidden[-1],), dtype=np.float32)
    return config, weights, x, g


def checksum(a: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """(sum(a * w), sum(|a * w|)) in float64: a value and the scale its error is judged against."""
    p = np.asarray(a, dtype=np.float64) * np.asarray(w, dtype=np.float64)
    return float(p.sum()), float(np.abs(p).sum())


# ---------------------------------------------------------------------------------------------
# rnnkit
# ---------------------------------------------------------------------------------------------


def rnnkit_runs(spec: dict, config: Config, weights: list[Weights], x: np.ndarray, g: np.ndarray) -> tuple[Run, Run]:
    """(timed run, checksum run) for rnnkit: chained single-layer layers, or per-step ``layer.step``."""
    from rnnkit.layers.recurrent import GRU, LSTM, RNN

    cls = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[spec["cell"]]
    layers = []
    for (D, H), w in zip(config.layer_sizes(), weights):
        layer = cls(D, H, num_layers=1, dtype=np.float32, seed=0)
        for name, value in w.items():
            layer.params[f"l0.{name}"][...] = value
        layers.append(layer)

    def train() -> tuple[np.ndarray, np.ndarray]:
        out = x
        for layer in layers:
            out = layer.forward(out, training=True)
        dx = g
        for layer in reversed(layers):
            dx = layer.backward(dx)
        return out, dx

    def infer() -> tuple[np.ndarray, None]:
        out = x
        for layer in layers:
            out = layer.forward(out, cache=False)  # inference: nothing kept for a backward
        return out, None

    steps = list(x)  # K arrays of shape (1, D)
    states = [None] * len(layers)

    def stream() -> tuple[np.ndarray, None]:
        for x_t in steps:
            y_t = x_t
            for k, layer in enumerate(layers):
                y_t, states[k] = layer.step(y_t, states[k])
        return y_t, None

    def stream_check() -> tuple[np.ndarray, None]:
        """All K outputs from the zero state (untimed)."""
        state, ys = None, []
        for x_t in steps:
            y_t, state = layers[0].step(x_t, state)
            ys.append(y_t)
        return np.stack(ys), None

    runs = {"train": (train, train), "infer": (infer, infer), "stream": (stream, stream_check)}
    return runs[spec["mode"]]


# ---------------------------------------------------------------------------------------------
# torch
# ---------------------------------------------------------------------------------------------


def torch_runs(spec: dict, config: Config, weights: list[Weights], x: np.ndarray, g: np.ndarray) -> tuple[Run, Run]:
    """(timed run, checksum run) for torch: nn.LSTM/GRU/RNN(batch_first), or the *Cell modules."""
    import torch

    torch.set_num_threads(spec["threads"])
    use_cell = spec["library"] == "torch-cell"
    family = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}[spec["cell"]]
    modules = []
    for (D, H), w in zip(config.layer_sizes(), weights):
        if use_cell:
            m = getattr(torch.nn, family + "Cell")(D, H)
            names = {"W_ih": "weight_ih", "W_hh": "weight_hh", "b_ih": "bias_ih", "b_hh": "bias_hh"}
        else:
            m = getattr(torch.nn, family)(D, H, batch_first=True)
            names = {"W_ih": "weight_ih_l0", "W_hh": "weight_hh_l0", "b_ih": "bias_ih_l0", "b_hh": "bias_hh_l0"}
        with torch.no_grad():
            for name, value in w.items():
                getattr(m, names[name]).copy_(torch.from_numpy(value))
        modules.append(m)

    xt = torch.from_numpy(x).requires_grad_(spec["mode"] == "train")  # dx too, as rnnkit computes it
    gt = torch.from_numpy(g)

    def train() -> tuple[np.ndarray, np.ndarray]:
        for m in modules:
            m.zero_grad(set_to_none=True)
        xt.grad = None
        out = xt
        for m in modules:
            out, _ = m(out)
        (out * gt).sum().backward()
        return out.detach().numpy(), xt.grad.numpy()

    def infer() -> tuple[np.ndarray, None]:
        with torch.inference_mode():
            out = xt
            for m in modules:
                out, _ = m(out)
        return out.numpy(), None

    # One step: nn.LSTM takes (B=1, T=1, D) and returns (y, state); a Cell takes (1, D) and
    # returns the state itself (h, or (h, c) for LSTMCell) whose h is the output.
    steps = [torch.from_numpy(x_t).reshape((1, -1) if use_cell else (1, 1, -1)) for x_t in x]
    states = [None] * len(modules)

    def one_step(m: torch.nn.Module, x_t: torch.Tensor, state):
        if not use_cell:
            return m(x_t, state)
        state = m(x_t, state)
        return (state[0] if isinstance(state, tuple) else state), state

    def stream() -> tuple[np.ndarray, None]:
        with torch.inference_mode():
            for x_t in steps:
                y_t = x_t
                for k, m in enumerate(modules):
                    y_t, states[k] = one_step(m, y_t, states[k])
        return y_t.numpy(), None

    def stream_check() -> tuple[np.ndarray, None]:
        with torch.inference_mode():
            state, ys = None, []
            for x_t in steps:
                y_t, state = one_step(modules[0], x_t, state)
                ys.append(y_t.reshape(1, -1).numpy())
        return np.stack(ys), None

    runs = {"train": (train, train), "infer": (infer, infer), "stream": (stream, stream_check)}
    return runs[spec["mode"]]


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


def time_reps(run: Run, reps: int, budget_s: float, warmup_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(wall seconds, CPU seconds) of each timed call, after a warm-up (>= 1 call and ``warmup_s``).

    Timed calls stop at ``reps``, or once ``budget_s`` is spent and ``MIN_REPS`` are done. CPU time
    is the whole process' (all threads): at one thread it leaves out the time the shared machine
    kept the process off the core; CPU/wall near the thread count means the process had its cores.
    """
    calls, t_end = 0, time.perf_counter() + warmup_s
    while calls == 0 or (time.perf_counter() < t_end and calls < MAX_WARMUP_CALLS):
        run()
        calls += 1
    wall: list[float] = []
    cpu: list[float] = []
    t_stop = time.perf_counter() + budget_s
    while len(wall) < reps and (len(wall) < MIN_REPS or time.perf_counter() < t_stop):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return np.array(wall), np.array(cpu)


def peak_rss_mb() -> float:
    """The process' peak resident set size so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_code(library: str, cell: str) -> None:
    """Import the library and run small models of ``cell`` once, so that imported and compiled code
    (numba's kernels, oneDNN's primitives) and thread pools stay out of the measured RSS growth.

    Both libraries run two: a tiny one (rnnkit's weight gradients are then products after the time
    loop) and one large enough (16 rows, about 5 million multiply-adds) for rnnkit's time loops to split
    their rows over two threads, which starts numba's OpenMP threads and loads the loops' parallel twins
    (about 9 MB, once per process), as the small configurations do at two threads; torch's thread pool
    starts there too."""
    rng = np.random.default_rng(0)
    for B, T, D, H in ((2, 3, 2, 4), (16, 64, 8, 32)):
        x = rng.normal(size=(B, T, D)).astype(np.float32)
        if library == "rnnkit":
            from rnnkit.layers.recurrent import Recurrent

            layer = Recurrent(cell, D, H, seed=0, dtype=np.float32)
            layer.backward(np.ones_like(layer.forward(x, training=True)))
            layer.forward(x, cache=False)
            layer.step(x[:, 0], None)
        else:
            import torch

            module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](D, H, batch_first=True)
            module(torch.from_numpy(x))[0].sum().backward()
            with torch.inference_mode():
                module(torch.from_numpy(x))


def measure(spec: dict) -> dict:
    """Build, check, warm up and time one (library, cell, config, mode, threads); return the record."""
    load_code(spec["library"], spec["cell"])
    build = rnnkit_runs if spec["library"] == "rnnkit" else torch_runs
    config, weights, x, g = make_data(spec)
    rss0 = peak_rss_mb()
    run, check_run = build(spec, config, weights, x, g)

    out, dx = check_run()
    check = {"out": checksum(out, g)}
    if dx is not None:
        check["dx"] = checksum(dx, x)

    wall, cpu = time_reps(run, spec["reps"], spec["budget_s"], spec["warmup_s"])
    per_unit = spec["stream_steps"] if spec["mode"] == "stream" else 1
    ms, cpu_ms = wall * 1e3 / per_unit, cpu * 1e3 / per_unit
    record = dict(spec)
    record.update(
        median_ms=float(np.median(ms)),
        min_ms=float(ms.min()),
        median_cpu_ms=float(np.median(cpu_ms)),
        n_reps=len(wall),
        cpu_per_wall=float(cpu.sum() / wall.sum()),
        loadavg_1m=os.getloadavg()[0],
        peak_rss_delta_mb=peak_rss_mb() - rss0,
        check=check,
        blas=blas_info(),
    )
    if "torch" in sys.modules:
        import torch

        record["torch_threads"] = torch.get_num_threads()
        record["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "other"
        record["torch_mkldnn"] = bool(torch.backends.mkldnn.is_available())
    return record


def main() -> None:
    print(json.dumps(measure(json.loads(sys.argv[1]))))


if __name__ == "__main__":
    main()
