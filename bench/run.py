"""The driver: one fresh child process per measurement, libraries alternated, medians over rounds.

For every (cell, config, mode, threads) "key" and every round, each library is measured in its
own child (``python -m bench.workers``): one library per process, so torch's OpenMP pool and
NumPy's OpenBLAS pool never compete for the cores. The order of the libraries flips from key to
key and from round to round (A B, B A, ...), so slow drift of the shared machine hits both sides.
A key's time is the median over rounds of each child's median; ``ratio = rnnkit / torch``
(below 1: rnnkit is faster).

Each child gets OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = MKL_NUM_THREADS = threads (and torch
``set_num_threads``). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, if set, are removed from the
children's environment (they force a slower OpenBLAS kernel on this machine) unless
``--keep-blas-env``; the output says which were removed.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .configs import FLOPS_FORMULA, MODE_HELP, STREAM, Config, mode_flops

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SLOW_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
CHILD_TIMEOUT_S = 900
STREAM_BASELINES = {"torch": "nn.{F}", "torch-cell": "nn.{F}Cell"}  # the two torch ways to take one step
FAMILY = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


@dataclass(frozen=True)
class Key:
    """One measured point; each library is timed on it in every round."""

    cell: str
    config: Config
    mode: str
    threads: int

    def libraries(self) -> tuple[str, ...]:
        return ("rnnkit", "torch", "torch-cell") if self.mode == "stream" else ("rnnkit", "torch")


@dataclass(frozen=True)
class Settings:
    reps: int  # timed repetitions per child (at most)
    budget_s: float  # time budget per child for the timed repetitions
    warmup_s: float  # warm-up time per child
    stream_steps: int  # steps per timed streaming repetition
    gemm_n: int  # matrix size of the ceiling measurement
    keep_blas_env: bool  # leave OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the children's environment


def plan(cells: list[str], configs: list[Config], modes: list[str], threads: list[int]) -> list[Key]:
    """Every key: sequence modes over the configs, streaming once per cell (its own config)."""
    keys = []
    for cell in cells:
        for mode in modes:
            for config in [STREAM] if mode == "stream" else configs:
                keys.extend(Key(cell, config, mode, t) for t in threads)
    return keys


def child_env(threads: int, keep_blas_env: bool) -> dict[str, str]:
    """The parent's environment with the thread variables set (and the slow-BLAS ones removed)."""
    env = dict(os.environ)
    env.update({var: str(threads) for var in THREAD_VARS})
    if not keep_blas_env:
        for var in SLOW_BLAS_VARS:
            env.pop(var, None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_child(module: str, args: list[str], threads: int, settings: Settings) -> dict:
    """Run ``python -m module args`` with the thread environment; its last stdout line is JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        check=False,
        env=child_env(threads, settings.keep_blas_env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_ceilings(threads: list[int], settings: Settings) -> dict[int, dict]:
    """float32 GEMM ceiling per thread count, each in its own child (bench.gemm)."""
    return {t: run_child("bench.gemm", ["--threads", str(t), "--n", str(settings.gemm_n)], t, settings) for t in threads}


def best_ceilings(first: dict[int, dict], second: dict[int, dict]) -> dict[int, dict]:
    """Per thread count, the higher of two ceiling measurements (before and after the run)."""
    return {t: max(first[t], second[t], key=lambda c: c.get("gflops", 0.0)) for t in first}


def measure_once(key: Key, library: str, seed: int, settings: Settings) -> dict:
    """One child: one library on one key."""
    spec = {
        "library": library,
        "cell": key.cell,
        "config": key.config.name,
        "mode": key.mode,
        "threads": key.threads,
        "reps": settings.reps,
        "budget_s": settings.budget_s,
        "warmup_s": settings.warmup_s,
        "stream_steps": settings.stream_steps,
        "seed": seed,
    }
    return run_child("bench.workers", [json.dumps(spec)], key.threads, settings)


def run_rounds(keys: list[Key], rounds: int, settings: Settings, seed: int = 0) -> dict[tuple[Key, str], list[dict]]:
    """Every (key, library) measured once per round; the library order flips with key and round."""
    records: dict[tuple[Key, str], list[dict]] = {(k, lib): [] for k in keys for lib in k.libraries()}
    total, done, t0 = len(records) * rounds, 0, time.perf_counter()
    for r in range(rounds):
        for i, key in enumerate(keys):
            libs = key.libraries()
            for lib in libs if (r + i) % 2 == 0 else libs[::-1]:
                record = measure_once(key, lib, seed, settings)
                records[(key, lib)].append(record)
                done += 1
                status = record.get("error") or f"{record['median_ms']:.4g} ms"
                print(
                    f"[{done}/{total} {time.perf_counter() - t0:.0f}s] round {r + 1} {key.cell} {key.config.name} "
                    f"{key.mode} t={key.threads} {lib}: {status}",
                    file=sys.stderr,
                    flush=True,
                )
    return records


def summarise(records: list[dict]) -> dict:
    """Median over rounds of each child's median; the smallest min; the median peak RSS growth."""
    good = [r for r in records if "error" not in r]
    if not good:
        return {"error": records[0]["error"] if records else "not run"}
    last = good[-1]
    summary = {
        "median_ms": statistics.median(r["median_ms"] for r in good),
        "min_ms": min(r["min_ms"] for r in good),
        "median_cpu_ms": statistics.median(r["median_cpu_ms"] for r in good),
        "round_medians_ms": [r["median_ms"] for r in good],
        "failed_rounds": len(records) - len(good),
        "reps_per_round": [r["n_reps"] for r in good],
        "peak_rss_delta_mb": statistics.median(r["peak_rss_delta_mb"] for r in good),
        "cpu_per_wall": statistics.median(r["cpu_per_wall"] for r in good),
        "loadavg_1m": statistics.median(r["loadavg_1m"] for r in good),
        "check": last["check"],
        "blas": last["blas"],
    }
    for name in ("torch_threads", "torch_blas", "torch_mkldnn"):
        if name in last:
            summary[name] = last[name]
    return summary


def checks_agree(a: dict, b: dict, rtol: float = 1e-4) -> bool:
    """Same checksums: |sum_a - sum_b| <= rtol * sum(|.|) for every checksum both report."""
    return all(
        abs(a[name][0] - b[name][0]) <= rtol * max(a[name][1], b[name][1]) + 1e-6 for name in a.keys() & b.keys()
    )


def pct_of_ceiling(key: Key, ms: float, ceilings: dict[int, dict]) -> float | None:
    """Achieved GFLOP/s (FLOPS_FORMULA) as a percentage of the GEMM ceiling at the same thread count."""
    ceiling = ceilings.get(key.threads, {}).get("gflops")
    if not ceiling:
        return None
    return 100.0 * mode_flops(key.config, key.cell, key.mode) / (ms * 1e-3) / 1e9 / ceiling


def make_rows(keys: list[Key], records: dict, ceilings: dict[int, dict]) -> list[dict]:
    """One row per key and torch baseline (streaming has two: nn.LSTM and nn.LSTMCell)."""
    rows = []
    for key in keys:
        ours = summarise(records[(key, "rnnkit")])
        for baseline in key.libraries()[1:]:
            theirs = summarise(records[(key, baseline)])
            row = {
                "cell": key.cell,
                "config": key.config.name,
                "shape": key.config.label(),
                "mode": key.mode,
                "baseline": STREAM_BASELINES[baseline].format(F=FAMILY[key.cell]),
                "threads": key.threads,
                "flops": mode_flops(key.config, key.cell, key.mode),
                "rnnkit": ours,
                "torch": theirs,
            }
            if "error" not in ours and "error" not in theirs:
                row["ratio"] = ours["median_ms"] / theirs["median_ms"]
                row["ratio_of_mins"] = ours["min_ms"] / theirs["min_ms"]
                row["cpu_ratio"] = ours["median_cpu_ms"] / theirs["median_cpu_ms"]
                row["pct_ceiling_rnnkit"] = pct_of_ceiling(key, ours["median_ms"], ceilings)
                row["pct_ceiling_torch"] = pct_of_ceiling(key, theirs["median_ms"], ceilings)
                row["same_result"] = checks_agree(ours["check"], theirs["check"])
            rows.append(row)
    return rows


def machine_info() -> dict:
    """CPU model, core count, Python and library versions, load average."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []

    def field(name: str) -> str:
        return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith(name)), "")

    return {
        "cpu": field("model name") or "unknown",
        "cores": os.cpu_count(),
        "avx512f": "avx512f" in field("flags").split(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_start": os.getloadavg(),
    }


def blas_env_note(keep: bool) -> str:
    """What happened to OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for the children."""
    present = {v: os.environ[v] for v in SLOW_BLAS_VARS if v in os.environ}
    if not present:
        return "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE were not set"
    listed = ", ".join(f"{k}={v}" for k, v in present.items())
    return f"kept for the child processes: {listed}" if keep else f"unset for the child processes: {listed}"


def fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}g}"


def blas_label(summary: dict) -> str:
    """'SkylakeX/1' (OpenBLAS kernel/threads) for rnnkit; 'MKL+oneDNN/1' for torch."""
    if "torch_blas" in summary:
        return f"{summary['torch_blas']}{'+oneDNN' if summary.get('torch_mkldnn') else ''}/{summary['torch_threads']}"
    lib = (summary.get("blas") or [{}])[0]
    return f"{lib.get('architecture')}/{lib.get('num_threads')}"


TABLE_HEAD = (
    "| cell | config (B,T,D,H) | mode | vs torch | thr | rnnkit ms | torch ms | ratio | ratio of mins | CPU-time ratio "
    "| % ceiling rnnkit / torch | CPU/wall rnnkit / torch | peak ΔRSS MB rnnkit / torch | BLAS/threads rnnkit; torch "
    "| same result |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
)


def markdown_row(r: dict) -> str:
    ours, theirs = r["rnnkit"], r["torch"]
    lead = f"| {r['cell']} | {r['config']} {r['shape']} | {r['mode']} | {r['baseline']} | {r['threads']} "
    if "ratio" not in r:
        return lead + f"| error: {ours.get('error') or theirs.get('error')} |"
    return lead + (
        f"| {fmt(ours['median_ms'])} | {fmt(theirs['median_ms'])} | **{r['ratio']:.2f}** | {r['ratio_of_mins']:.2f} | {r['cpu_ratio']:.2f} "
        f"| {fmt(r['pct_ceiling_rnnkit'], 2)} / {fmt(r['pct_ceiling_torch'], 2)} "
        f"| {ours['cpu_per_wall']:.2f} / {theirs['cpu_per_wall']:.2f} "
        f"| {ours['peak_rss_delta_mb']:.1f} / {theirs['peak_rss_delta_mb']:.1f} "
        f"| {blas_label(ours)}; {blas_label(theirs)} | {'yes' if r['same_result'] else 'NO'} |"
    )


def markdown_table(rows: list[dict]) -> str:
    return TABLE_HEAD + "\n".join(markdown_row(r) for r in rows) + "\n"


SMALL_PCT = 20.0  # the "small" configurations: torch reaches under 20 % of the GEMM ceiling


def summary_table(rows: list[dict]) -> str:
    """Per (cell, mode, threads): geometric-mean ratio, configurations faster than torch, the worst ratio, and the
    issue's other targets (train: below 0.5 where torch is under 20 % of the ceiling; peak memory at most torch's)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if "ratio" in r and r["mode"] != "stream":
            groups.setdefault((r["cell"], r["mode"], r["threads"]), []).append(r)
    lines = ["| cell | mode | threads | geometric mean ratio | faster than torch | worst ratio (config) "
             "| below 0.5 where torch < 20 % of ceiling | peak ΔRSS <= torch |",
             "|---|---|---|---|---|---|---|---|"]
    for (cell, mode, threads), rs in sorted(groups.items()):
        ratios = [r["ratio"] for r in rs]
        worst = max(rs, key=lambda r: r["ratio"])
        small = [r for r in rs if (r["pct_ceiling_torch"] or 0) < SMALL_PCT]
        halved = f"{sum(r['ratio'] < 0.5 for r in small)}/{len(small)}" if mode == "train" else "-"
        memory = sum(r["rnnkit"]["peak_rss_delta_mb"] <= r["torch"]["peak_rss_delta_mb"] for r in rs)
        lines.append(f"| {cell} | {mode} | {threads} | {math.exp(sum(map(math.log, ratios)) / len(ratios)):.2f} "
                     f"| {sum(x < 1 for x in ratios)}/{len(rs)} | {worst['ratio']:.2f} ({worst['config']}) "
                     f"| {halved} | {memory}/{len(rs)} |")
    return "\n".join(lines) + "\n"


def report_header(result: dict) -> str:
    ceil = "; ".join(f"{t} thread(s): {c.get('gflops', 0):.0f} GFLOP/s" for t, c in result["ceilings"].items())
    lib = next((c["blas"][0] for c in result["ceilings"].values() if c.get("blas")), {})
    m = result["machine"]
    return (
        f"command: `{result['command']}`\n\n"
        f"machine: {m['cpu']}, {m['cores']} cores, AVX-512 {'yes' if m['avx512f'] else 'no'}, Python {m['python']}; "
        f"load average at start {m['loadavg_start'][0]:.2f}, at end {m['loadavg_end'][0]:.2f}\n\n"
        f"NumPy BLAS: {lib.get('internal_api')} {lib.get('version')}, kernel {lib.get('architecture')}; "
        f"{result['blas_env']}\n\n"
        f"float32 GEMM ceiling (NumPy, n={result['settings']['gemm_n']}, best of before and after the run): {ceil}\n\n"
        f"FLOPs: {FLOPS_FORMULA}\n\n"
        f"modes: " + "; ".join(f"{k} = {v}" for k, v in MODE_HELP.items()) + "\n\n"
        f"time = median over {result['rounds']} round(s) (fresh process per library per round, order alternated) "
        f"of each process' median; ratio = rnnkit ms / torch ms (below 1: rnnkit faster); ratio of mins = the same "
        f"with each side's fastest repetition (less sensitive to other load); CPU-time ratio = the same with the median CPU time per unit (at 1 thread it leaves out time spent waiting for a core; at 2 threads it counts spin-waiting). CPU/wall = process CPU time / wall time "
        f"while timing (about 1 per busy thread; lower: the shared machine took the core). Same result: "
        f"sum(out*g) and sum(dx*x) agree to 1e-4 of their L1 scale (same weights, inputs and g on both sides).\n"
    )


def run(cells, configs, modes, threads, rounds: int, settings: Settings, json_path: Path, command: str) -> dict:
    """Measure everything, write the JSON, return it (with the markdown under 'markdown')."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    machine = machine_info()
    ceilings_before = measure_ceilings(threads, settings)
    keys = plan(cells, configs, modes, threads)
    records = run_rounds(keys, rounds, settings)
    ceilings = best_ceilings(ceilings_before, measure_ceilings(threads, settings))
    machine["loadavg_end"] = os.getloadavg()
    result = {
        "command": command,
        "started": started,
        "machine": machine,
        "blas_env": blas_env_note(settings.keep_blas_env),
        "ceilings": ceilings,
        "flops_formula": FLOPS_FORMULA,
        "rounds": rounds,
        "settings": settings.__dict__,
        "rows": make_rows(keys, records, ceilings),
    }
    result["markdown"] = (report_header(result) + "\n" + summary_table(result["rows"]) + "\n"
                          + markdown_table(result["rows"]))
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1))
    return result
