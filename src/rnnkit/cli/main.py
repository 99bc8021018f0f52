"""Entry point of the ``rnnkit`` command.

Every command is a thin wrapper over one library call. Errors are mapped to a
single line on stderr and a non-zero exit here, in one place; set
``RNNKIT_DEBUG=1`` to see the full traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from ..errors import RnnkitError

#: exit codes: 1 = bad input or failed run, 2 = bad command line, 130 = interrupted
EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rnnkit")
def cli() -> None:
    """rnnkit: RNN, GRU and LSTM in NumPy, trained and run from the command line.

    \b
    Examples:
      rnnkit demo                      # the built-in tour, no downloads
      rnnkit train forecast data.csv --column passengers
      rnnkit generate model.safetensors --prime "ROMEO:"
    """


@cli.group()
def train() -> None:
    """Train a model on your own data (forecast, lm, classify)."""


def _register_commands() -> None:
    """Import the command modules; each adds its commands to ``cli`` or ``train``."""
    import importlib
    import pkgutil

    from . import __path__ as pkg_path

    for mod in pkgutil.iter_modules(pkg_path):
        if mod.name.startswith("cmd_"):
            importlib.import_module(f"{__package__}.{mod.name}")


def error_line(exc: BaseException) -> str:
    """The one line printed for an error: ``rnnkit: error: <message>``."""
    if isinstance(exc, click.UsageError):
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        return f"rnnkit: error: {exc.format_message()}{hint}"
    if isinstance(exc, FileNotFoundError):
        return f"rnnkit: error: file not found: {exc.filename or exc}"
    message = " ".join(str(exc).split()) or type(exc).__name__
    return f"rnnkit: error: {message}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code instead of raising."""
    _register_commands()
    debug = os.environ.get("RNNKIT_DEBUG", "") not in ("", "0")
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="rnnkit", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        print("rnnkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except click.UsageError as exc:
        if debug:
            raise
        print(error_line(exc), file=sys.stderr)
        return EXIT_USAGE
    except (RnnkitError, OSError, click.ClickException) as exc:
        if debug:
            raise
        msg = exc.format_message() if isinstance(exc, click.ClickException) else None
        print(f"rnnkit: error: {msg}" if msg else error_line(exc), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("rnnkit: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
