"""Forecast quality on real series: ``python -m bench.quality_forecast`` from the repository root.

Checks two claims, on the held-out last 10 % of each series (one-step forecasts, original units):

- airline passengers (monthly, trend + season 12): the model's RMSE is below the seasonal-naive
  forecast's (``x̂_{t+1} = x_{t+1-12}``);
- monthly sunspots (an irregular ~11-year cycle): the model's RMSE is below the naive forecast's
  (``x̂_{t+1} = x_t``).

Prints one row per series and seed, and the equivalent ``rnnkit train forecast`` command; exits
with status 1 if a claim fails. Takes a few minutes on 2 cores (sunspots dominates).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnkit.data import load_series_csv
from rnnkit.tasks.forecasting import Forecaster

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # shared/ beside the repository


@dataclass(frozen=True)
class Case:
    name: str
    file: str  # CSV file in the data folder
    column: str
    time_column: str
    baseline: str  # the forecast the model must beat: "naive" or "seasonal_naive"
    params: dict[str, Any] = field(default_factory=dict)  # Forecaster arguments


CASES = (
    Case("airline passengers", "ts_airline_passengers.csv", "passengers", "month", "seasonal_naive",
         dict(cell="lstm", hidden=32, window=12, difference=12, epochs=200, lr=3e-3, patience=30, batch_size=16)),
    Case("monthly sunspots", "ts_sunspots_monthly.csv", "sunspots", "month", "naive",
         dict(cell="lstm", hidden=32, window=24, epochs=40, lr=3e-3, patience=8, batch_size=32)),
)


def cli_command(case: Case, seed: int) -> str:
    """The ``rnnkit train forecast`` command that trains the same model."""
    options = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in {**case.params, "seed": seed}.items())
    return f"rnnkit train forecast {case.file} --column {case.column} --time-column {case.time_column} {options}"


def run_case(case: Case, data_dir: Path, seed: int) -> dict[str, Any]:
    """Train on one series and return its test scores, the training time and whether the claim holds."""
    series = load_series_csv(data_dir / case.file, case.column, case.time_column)
    started = time.perf_counter()
    forecaster = Forecaster(**case.params, seed=seed).fit(series, progress=False)
    seconds = time.perf_counter() - started
    scores = forecaster.evaluate(series, split="test")
    return {
        "series": case.name, "seed": seed, "seconds": round(seconds, 1), "epochs": len(forecaster.history_.rows),
        "season": scores["season"], "n_test": scores["n"], "baseline": case.baseline,
        "rmse": {name: scores[name]["rmse"] for name in ("model", "naive", "seasonal_naive") if scores[name]},
        "mase": {name: scores[name]["mase"] for name in ("model", "naive", "seasonal_naive") if scores[name]},
        "claim_holds": scores["model"]["rmse"] < scores[case.baseline]["rmse"],
        "command": cli_command(case, seed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the ts_*.csv files")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds (default: 0)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    results = []
    print(f"{'series':<20}{'seed':>5}{'model':>10}{'naive':>10}{'s-naive':>10}  {'beats':<22}{'epochs':>7}{'s':>7}")
    for case in CASES:
        for seed in args.seeds:
            r = run_case(case, args.data, seed)
            results.append(r)
            rmse = r["rmse"]
            verdict = ("yes" if r["claim_holds"] else "NO") + f" ({case.baseline.replace('_', '-')})"
            print(f"{r['series']:<20}{seed:>5}{rmse['model']:>10.3f}{rmse['naive']:>10.3f}"
                  f"{rmse.get('seasonal_naive', float('nan')):>10.3f}  {verdict:<22}{r['epochs']:>7}{r['seconds']:>7}")
    print("test RMSE of one-step forecasts in the series' units; commands:")
    for r in results:
        print(f"  {r['command']}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if all(r["claim_holds"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
