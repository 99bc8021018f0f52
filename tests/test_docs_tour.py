"""docs/tour.md cannot drift from the code.

1. Every citation `` `src/...py:Lm-Ln` `` is followed by a ```python excerpt that must equal lines
   m..n of that file (after removing their common indentation).
2. Every other ```python block is a doctest (``>>>``); all of them run in order in one namespace.
"""

from __future__ import annotations

import doctest
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "docs" / "tour.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
CITED_BLOCK = re.compile(r"`(src/rnnkit/[\w/]+\.py):L(\d+)-L(\d+)`\n\n```python\n(.*?)```", re.S)


def citations() -> list[tuple[str, int, int, str]]:
    return [(path, int(a), int(b), code) for path, a, b, code in CITED_BLOCK.findall(TOUR.read_text("utf-8"))]


@pytest.mark.parametrize("path, first, last, excerpt", citations(), ids=lambda v: str(v)[:40])
def test_cited_lines_hold_the_excerpt(path, first, last, excerpt):
    lines = (ROOT / path).read_text("utf-8").splitlines()
    wanted = textwrap.dedent(excerpt).rstrip("\n")
    n = last - first + 1
    cited = textwrap.dedent("\n".join(lines[first - 1 : last]))
    moved = [k + 1 for k in range(len(lines) - n + 1) if textwrap.dedent("\n".join(lines[k : k + n])) == wanted]
    hint = f"it is now at L{moved[0]}-L{moved[0] + n - 1}" if moved else "the code changed: update the excerpt"
    assert cited == wanted, f"docs/tour.md cites {path}:L{first}-L{last}, which no longer holds its excerpt; {hint}"


def test_every_code_block_is_checked():
    text = TOUR.read_text("utf-8")
    cited = {code for *_, code in citations()}
    blocks = BLOCK.findall(text)
    unchecked = [b[:60] for b in blocks if b not in cited and ">>>" not in b]
    assert not unchecked, f"code blocks that are neither a cited excerpt nor a doctest: {unchecked}"
    assert len(cited) >= 10 and sum(">>>" in b for b in blocks) >= 6


def test_snippets_run_and_print_what_the_page_says():
    source = "\n".join(b for b in BLOCK.findall(TOUR.read_text("utf-8")) if ">>>" in b)
    test = doctest.DocTestParser().get_doctest(source, {}, "tour.md", str(TOUR), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 20 and result.failed == 0, f"{result.failed} snippet(s) of docs/tour.md failed (above)"
