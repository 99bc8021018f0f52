"""Smoke test of the benchmark harness (bench/): it runs end to end and writes sane JSON.

No timing assertions: how fast anything is belongs to the benchmark itself. The harness runs as a
user runs it (a subprocess from the repository root) on one tiny configuration, one round, one
thread: about 5-10 s, mostly two torch imports. ``--keep-blas-env`` leaves the OpenBLAS variables
of the test environment alone.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

REPO_ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD_S = 120  # a hang, not slowness: the run takes ~5-10 s on 2 busy cores


def test_quick_run_writes_times_ratio_and_matching_checksums(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "bench", "--quick", "--cells", "gru", "--configs", "binary-add",
           "--modes", "train", "--threads", "1", "--rounds", "1", "--keep-blas-env", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=HANG_GUARD_S, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| gru | binary-add (16,8,2,16) | train |" in proc.stdout

    result = json.loads(out.read_text())
    assert result["ceilings"]["1"]["gflops"] > 0
    [row] = result["rows"]
    assert (row["cell"], row["config"], row["mode"], row["threads"]) == ("gru", "binary-add", "train", 1)
    for library in ("rnnkit", "torch"):
        summary = row[library]
        assert "error" not in summary, summary
        assert 0 < summary["min_ms"] <= summary["median_ms"]
        assert set(summary["check"]) == {"out", "dx"}
    assert math.isfinite(row["ratio"]) and row["ratio"] > 0
    assert row["ratio"] == pytest.approx(row["rnnkit"]["median_ms"] / row["torch"]["median_ms"])
    # Same weights, inputs and g on both sides: the two libraries computed the same numbers.
    assert row["same_result"] is True
