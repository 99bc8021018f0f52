"""``python -m rnnkit`` is the ``rnnkit`` command."""

from .cli.main import run

run()
