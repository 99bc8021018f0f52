"""The ``rnnkit`` command: thin commands over library calls, errors mapped to one line in one place."""
