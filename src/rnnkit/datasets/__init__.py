"""Small real data sets that ship inside rnnkit, so the demos and examples need no download.

=============== ===================================== ===========================================
name            file                                  what
=============== ===================================== ===========================================
``airline``     ``airline_passengers.csv``            Box-Jenkins airline passengers, monthly
                                                      1949-01 .. 1960-12 (144 values, thousands);
                                                      columns ``month``, ``passengers``
``shakespeare`` ``shakespeare_macbeth.txt``           *Macbeth* (modern spelling, ~103 k ASCII
                                                      characters), for character language models
``hongloumeng`` ``hongloumeng_ch1-2.txt``             红楼梦 chapters 1-2 (脂砚斋 commentary removed,
                                                      ~13 k characters), for Chinese text models
=============== ===================================== ===========================================

Sources and licences are in ``DATA_LICENSES.md`` beside these files. Use them from the command
line with their path: ``rnnkit train lm "$(python -c 'import rnnkit.datasets as d; print(d.path("shakespeare"))')"``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..data import SeriesData, load_series_csv, load_text as _load_text_file
from ..errors import ConfigError

FILES: dict[str, str] = {
    "airline": "airline_passengers.csv",
    "shakespeare": "shakespeare_macbeth.txt",
    "hongloumeng": "hongloumeng_ch1-2.txt",
}
NAMES: tuple[str, ...] = tuple(FILES)
TEXTS: tuple[str, ...] = ("shakespeare", "hongloumeng")

__all__ = ["FILES", "NAMES", "TEXTS", "load_airline", "load_text", "path"]


def path(name: str) -> Path:
    """The file of built-in data set ``name`` (one of :data:`NAMES`) on disk."""
    if name not in FILES:
        raise ConfigError(f"unknown built-in data set {name!r}; the built-in data sets are {list(NAMES)}")
    return Path(str(resources.files(__package__).joinpath(FILES[name])))


def load_airline() -> SeriesData:
    """The airline passengers series: ``values (144,)`` in thousands, ``time`` the months "1949-01" .. "1960-12"."""
    return load_series_csv(path("airline"), "passengers", time_column="month")


def load_text(name: str = "shakespeare") -> str:
    """A built-in text (one of :data:`TEXTS`) as one str with ``"\\n"`` line endings."""
    if name not in TEXTS:
        raise ConfigError(f"{name!r} is not a built-in text; the built-in texts are {list(TEXTS)}")
    return _load_text_file(path(name))
