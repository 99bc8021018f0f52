"""Numeric series: CSV loading, supervised windows, chronological splits, season detection."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._validation import check_float_array, check_positive_int, check_probability
from ..errors import ConfigError, DataError, ShapeError
from ._files import read_utf8

#: Cell values read as "missing" (compared after stripping blanks and lower-casing).
MISSING_MARKERS = ("", "na", "nan", "null", "none", "n/a", "?")


@dataclass(frozen=True)
class SeriesData:
    """A numeric series read from a CSV file.

    values:  float64, shape (N,) for one column or (N, k) for a list of k columns
    columns: the value column names, in the order of ``values``' last axis
    time:    the time labels exactly as written in ``time_column``, or None
    notes:   what the loader changed, e.g. "interpolated 59 missing values in 'co2_ppm' ..."
    """

    values: np.ndarray
    columns: tuple[str, ...]
    time: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)


def load_series_csv(
    path: str | os.PathLike,
    column: str | Sequence[str],
    time_column: str | None = None,
    interpolate: bool = True,
    *,
    min_rows: int = 2,
) -> SeriesData:
    """Read numeric column(s) of a UTF-8 CSV file with a header row.

    ``column`` is one name (values of shape (N,)) or a list of names (values (N, k)). Empty cells
    and NA/NaN/null markers are missing: with ``interpolate=True`` they are filled linearly in row
    order (gaps at either end take the nearest observed value) and a note says how many; with
    ``interpolate=False`` they raise DataError. Blank lines are skipped. Raises DataError for a
    missing/empty/non-UTF-8 file, an unknown column (listing those that exist), a non-numeric or
    infinite value (naming the line), and fewer than ``min_rows`` data rows.
    """
    min_rows = check_positive_int(min_rows, "min_rows")
    names = [column] if isinstance(column, str) else list(column)
    if not names or not all(isinstance(c, str) for c in names):
        raise ConfigError(f"column must be a column name or a non-empty list of names, got {column!r}")
    wanted = names if time_column is None else [*names, time_column]

    reader = csv.reader(io.StringIO(read_utf8(path, "series file"), newline=""))
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        raise DataError(
            f"series file {str(path)!r} is empty; expected a header row (e.g. 'month,passengers') "
            "followed by one row per time step"
        )
    unknown = [c for c in wanted if c not in header]
    if unknown:
        raise DataError(f"column {unknown[0]!r} is not in {str(path)!r}; the file has columns {header}")
    picks = [header.index(c) for c in wanted]

    cells, lines = [], []
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(
                f"{str(path)!r}, line {reader.line_num}: {len(row)} fields but the header has {len(header)}; "
                "fix the row, or quote fields that contain ','"
            )
        cells.append([row[i] for i in picks])
        lines.append(reader.line_num)
    if len(cells) < min_rows:
        raise DataError(f"series file {str(path)!r} has {len(cells)} data row(s); need at least {min_rows}")

    table = np.array(cells, dtype=str)  # (N, len(wanted))
    notes: list[str] = []
    columns = [_parse_column(table[:, j], name, lines, path, interpolate, notes) for j, name in enumerate(names)]
    values = columns[0] if isinstance(column, str) else np.column_stack(columns)
    time = table[:, -1].tolist() if time_column is not None else None
    return SeriesData(values=values, columns=tuple(names), time=time, notes=notes)


def _parse_column(
    cells: np.ndarray, name: str, lines: list[int], path: str | os.PathLike, interpolate: bool, notes: list[str]
) -> np.ndarray:
    """Parse one column of strings to float64, interpolating missing cells (see load_series_csv)."""
    text = np.char.lower(np.char.strip(cells))
    missing = np.isin(text, MISSING_MARKERS)
    values = np.full(len(cells), np.nan)
    try:
        values[~missing] = text[~missing].astype(np.float64)
    except ValueError:
        values[~missing] = [_to_float(s) for s in text[~missing]]  # error path: find the bad cell
    bad = ~missing & np.isnan(values) | np.isinf(values)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{str(path)!r}, line {lines[row]}: column {name!r} has the value {str(cells[row])!r}, which is not a finite number; "
            "fix or blank the cell (blank cells count as missing)"
        )
    n_missing = int(missing.sum())
    if n_missing == 0:
        return values
    if n_missing == len(values):
        raise DataError(f"column {name!r} of {str(path)!r} has no values, only missing cells")
    if not interpolate:
        raise DataError(
            f"column {name!r} of {str(path)!r} has {n_missing} missing value(s), the first at line "
            f"{lines[int(np.argmax(missing))]}; pass interpolate=True to fill them linearly, or clean the file"
        )
    t = np.arange(len(values))
    values[missing] = np.interp(t[missing], t[~missing], values[~missing])
    notes.append(
        f"interpolated {n_missing} missing values in {name!r} "
        "(linear in row order; gaps at either end take the nearest value)"
    )
    return values


def _to_float(s: str) -> float:
    """float(s), or NaN where NumPy cannot parse it (flagged as non-numeric by the caller)."""
    try:
        return float(np.array([s]).astype(np.float64)[0])
    except ValueError:
        return np.nan


def windows(series: np.ndarray, window: int, horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cut a series into supervised pairs (``window`` past values -> the next ``horizon`` values).

        X[m] = series[m : m + window]                       # (window, k)
        Y[m] = series[m + window : m + window + horizon]    # (horizon,) or (horizon, k)

    for m = 0 .. M-1 with M = N - window - horizon + 1. X always carries a feature axis, because
    recurrent layers take (B, T, D): a 1-D series (N,) gives X (M, window, 1). Y keeps the series'
    own trailing shape: (M, horizon) for a 1-D series, (M, horizon, k) for a (N, k) series.
    Both are new C-contiguous arrays (not views) in the series' float dtype.
    """
    x = check_float_array(series, "series")
    if x.ndim not in (1, 2):
        raise ShapeError(f"series must have shape (N,) or (N, k), got {x.shape}")
    window = check_positive_int(window, "window")
    horizon = check_positive_int(horizon, "horizon")
    if len(x) < window + horizon:
        raise DataError(
            f"series has {len(x)} values, too few for window={window} and horizon={horizon}: need at least "
            f"{window + horizon}; use a shorter window or a longer series"
        )
    frames = np.moveaxis(sliding_window_view(x, window + horizon, axis=0), -1, 1)  # (M, window+horizon[, k])
    X = frames[:, :window] if x.ndim == 2 else frames[:, :window, None]  # (M, window, k)
    Y = frames[:, window:]  # (M, horizon[, k])
    return X.copy(), Y.copy()


def chronological_split(n: int, val_frac: float = 0.1, test_frac: float = 0.1) -> tuple[slice, slice, slice]:
    """Split ``n`` time steps, in order, into train / validation / test slices (no shuffling).

    n_test = round(n * test_frac) and n_val = round(n * val_frac) are taken from the end (test last);
    train gets the rest. Apply the slices to the series before windowing. A fraction of 0 gives an
    empty slice; a positive fraction that rounds to no rows raises DataError, as does an empty train.
    """
    n = check_positive_int(n, "n")
    val_frac = check_probability(val_frac, "val_frac")
    test_frac = check_probability(test_frac, "test_frac")
    if val_frac + test_frac >= 1.0:
        raise ConfigError(f"val_frac + test_frac must be < 1 to leave training data, got {val_frac} + {test_frac}")
    n_val, n_test = int(n * val_frac + 0.5), int(n * test_frac + 0.5)
    for frac, size, name in ((val_frac, n_val, "val_frac"), (test_frac, n_test, "test_frac")):
        if frac > 0 and size == 0:
            raise DataError(f"{name}={frac} of n={n} steps rounds to 0 steps; use a larger fraction or 0")
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(f"n={n} steps leave no training steps after {n_val} validation and {n_test} test steps")
    return slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, n)


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Sample autocorrelation r_l = sum_t (x_t - mean)(x_{t+l} - mean) / sum_t (x_t - mean)^2, l = 0..N-1.

    Computed with one zero-padded FFT (O(N log N)). A constant series gives all zeros.
    """
    x = np.asarray(x, dtype=np.float64)
    d = x - x.mean()
    spectrum = np.fft.rfft(d, 2 * len(d))  # zero padding: linear, not circular, correlation
    acov = np.fft.irfft(spectrum * spectrum.conj())[: len(d)]
    return acov / acov[0] if acov[0] > 0 else np.zeros(len(d))


def detect_season(series: np.ndarray, max_season: int | None = None, min_acf: float = 0.3) -> int | None:
    """Return the season length (period in steps) of a 1-D series, or None if it has none.

    The series is detrended by a least-squares line, then its autocorrelation r (see
    ``autocorrelation``) is searched over lags 2..max_season (default N // 2) for peaks: lags l with
    r[l-1] < r[l] >= r[l+1]. A peak counts if r[l] >= min_acf and it rises at least min_acf above the
    lowest r at shorter lags (so the slow decay of a trend or an AR process is not a season). The
    season is the counting peak with the highest r. Airline passengers give 12 (months), weekly
    Mauna Loa CO2 52 (weeks), monthly sunspots about 125 (the 11-year cycle); white noise gives None.
    """
    x = check_float_array(series, "series", ndim=1)
    max_season = len(x) // 2 if max_season is None else check_positive_int(max_season, "max_season", minimum=2)
    if len(x) < 2 * max_season or max_season < 2:
        raise DataError(
            f"series has {len(x)} values, too few to find a season up to max_season={max_season}: "
            f"need at least {2 * max(max_season, 2)}; lower max_season"
        )
    min_acf = check_probability(min_acf, "min_acf")
    t = np.arange(len(x), dtype=np.float64)
    trend = np.polyval(np.polyfit(t, x.astype(np.float64), 1), t)
    r = autocorrelation(x - trend)[: max_season + 2]
    lags = np.arange(2, max_season + 1)
    is_peak = (r[lags] > r[lags - 1]) & (r[lags] >= r[lags + 1])
    lowest_before = np.minimum.accumulate(r[1:max_season])  # lowest_before[l-2] = min r[1..l-1]
    counts = is_peak & (r[lags] >= min_acf) & (r[lags] - lowest_before >= min_acf)
    if not counts.any():
        return None
    return int(lags[counts][np.argmax(r[lags][counts])])
