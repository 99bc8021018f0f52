"""Run the command line as a user does, and check its errors: one line on stderr, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rnnkit.cli.main import main


def rnnkit(*args: object, cwd: object, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``python -m rnnkit ARGS`` in ``cwd`` (RNNKIT_DEBUG unset: errors print one line, as for users)."""
    env = {k: v for k, v in os.environ.items() if k != "RNNKIT_DEBUG"}
    return subprocess.run([sys.executable, "-m", "rnnkit", *map(str, args)], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, encoding="utf-8", timeout=120, check=False)


def run_main(*args: object, capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess:
    """``rnnkit.cli.main.main(ARGS)`` in this process (what the console script calls), as a CompletedProcess."""
    argv = [str(a) for a in args]
    returncode = main(argv)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(argv, returncode, out, err)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """A failed run: non-zero exit, no traceback, one stderr line ``rnnkit: error: ...`` holding every fragment."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnkit: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
