"""Freed memory kept for reuse (rnnkit.cells.fast._memory): when glibc's malloc settings are made, and their effect.

The effect is checked in fresh processes: a freed 64 MB array's pages, allocated again, need no page faults
once the fast engine has loaded, and do without the setting (the opt-out). Speed is the benchmarks' business.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

from rnnkit.cells.fast import _memory

SRC = str(Path(_memory.__file__).resolve().parents[3])

_FAULTS = """
import resource, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import rnnkit.cells.fast._jit as engine
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(16 << 20, np.float32)
del a
before = faults()
b = np.ones(16 << 20, np.float32)
print(engine.MEMORY_KEPT, faults() - before)
"""


def _faults_of_a_second_64_mb(**env: str) -> tuple[bool, int]:
    """(MEMORY_KEPT, minor page faults) in a fresh process that loads the engine, frees 64 MB and allocates it again."""
    clean = {k: v for k, v in os.environ.items() if k != _memory.OPT_OUT and not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _FAULTS, SRC], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(_memory._glibc() is None, reason="the setting is for glibc's malloc")
def test_a_freed_array_is_reused_without_page_faults():
    kept, faults = _faults_of_a_second_64_mb()
    assert kept and faults < 16
    kept, faults_by_default = _faults_of_a_second_64_mb(**{_memory.OPT_OUT: "1"})
    assert not kept and faults_by_default > faults and faults_by_default >= 32  # 64 MB: at least 32 pages of 2 MB


@pytest.mark.parametrize("environ", [
    {_memory.OPT_OUT: "1"},
    {_memory.OPT_OUT: "yes"},
    {"MALLOC_MMAP_THRESHOLD_": "65536"},
    {"MALLOC_TRIM_THRESHOLD_": "0"},
    {"MALLOC_TOP_PAD_": "0"},
    {"MALLOC_MMAP_MAX_": "0"},
    {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"},
])
def test_the_users_own_malloc_settings_are_left_alone(environ):
    assert _memory.keep_freed_memory(environ) is False


def test_no_settings_without_glibc(monkeypatch):
    """On a C library other than glibc (or where ctypes cannot open the process's symbols) nothing is set."""
    def no_symbols(name):
        raise TypeError("a library name is needed here")

    monkeypatch.setattr(_memory.ctypes, "CDLL", no_symbols)
    assert _memory._glibc() is None
    assert _memory.keep_freed_memory({}) is False


@pytest.mark.skipif(_memory._glibc() is None, reason="the setting is for glibc's malloc")
@pytest.mark.parametrize("environ", [{}, {_memory.OPT_OUT: "0"}, {_memory.OPT_OUT: ""},
                                     {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}])
def test_the_settings_are_made_otherwise(environ):
    assert _memory.keep_freed_memory(environ) is True
