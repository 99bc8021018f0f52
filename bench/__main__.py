"""Command line: ``python -m bench [options]`` from the repository root (see ``--help``).

Examples:
    python -m bench --quick                                   # smoke check, about a minute
    python -m bench --cells lstm --configs small --threads 1  # one family, small configs
    python -m bench --rounds 3                                # the full comparison
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .configs import CELLS, CONFIG_SETS, CONFIGS, MODES, resolve_configs
from .run import DEFAULT_JSON, Settings, run

QUICK = {"configs": "quick", "rounds": 1, "reps": 5, "budget": 0.1, "warmup": 0.05, "stream_steps": 50, "gemm_n": 512}
FULL = {"configs": "all", "rounds": 3, "reps": 30, "budget": 1.0, "warmup": 0.2, "stream_steps": 200, "gemm_n": 2048}


def comma_list(choices: tuple[str, ...], option: str):
    """argparse type: 'a,b' -> ['a', 'b'], each checked against ``choices``."""

    def parse(text: str) -> list[str]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        bad = [s for s in items if s not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"{option}: got {text!r}; use a comma list of {', '.join(choices)}")
        return items

    return parse


def thread_list(text: str) -> list[int]:
    try:
        threads = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        threads = []
    if not threads or min(threads) < 1:
        raise argparse.ArgumentTypeError(f"--threads: got {text!r}; use positive integers, e.g. 1,2")
    return threads


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="rnnkit vs PyTorch on the CPU, float32.")
    p.add_argument("--cells", type=comma_list(CELLS, "--cells"), default=list(CELLS), help="lstm,gru,rnn (default all)")
    p.add_argument(
        "--configs",
        help=f"{'|'.join(CONFIG_SETS)} or a comma list of {', '.join(CONFIGS)} (default all; --quick: quick)",
    )
    p.add_argument("--modes", type=comma_list(MODES, "--modes"), default=list(MODES), help="train,infer,stream (default all)")
    p.add_argument("--threads", type=thread_list, default=[1, 2], help="thread counts (default 1,2)")
    p.add_argument("--rounds", type=int, help=f"rounds, each library once per key per round (default {FULL['rounds']})")
    p.add_argument("--reps", type=int, help=f"max timed repetitions per process (default {FULL['reps']})")
    p.add_argument("--budget", type=float, help=f"seconds of timed repetitions per process (default {FULL['budget']})")
    p.add_argument("--quick", action="store_true", help="smoke check: few configs, 1 round, few reps, small GEMM")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"results file (default {DEFAULT_JSON})")
    p.add_argument(
        "--keep-blas-env",
        action="store_true",
        help="leave OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE set in the child processes (default: unset them)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    base = QUICK if args.quick else FULL

    def pick(name: str):
        """The option as given, else the --quick or full default."""
        value = getattr(args, name, None)
        return base[name] if value is None else value

    try:
        configs = resolve_configs(pick("configs"))
    except ValueError as err:
        parser().error(str(err))
    if pick("rounds") < 1 or pick("reps") < 1:
        parser().error("--rounds and --reps must be >= 1")
    settings = Settings(
        reps=pick("reps"),
        budget_s=pick("budget"),
        warmup_s=base["warmup"],
        stream_steps=base["stream_steps"],
        gemm_n=base["gemm_n"],
        keep_blas_env=args.keep_blas_env,
    )
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    result = run(args.cells, configs, args.modes, args.threads, pick("rounds"), settings, args.json, command.strip())
    print(result["markdown"])
    print(f"results: {args.json}")


if __name__ == "__main__":
    main()
