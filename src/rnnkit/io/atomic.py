"""Atomic file writes: a reader sees the old file or the new one, never a mix.

The recipe (the same as ``git`` and SQLite use for their lock files):

1. write the new contents to a temporary file in the *same directory* as the target
   (``os.replace`` is only atomic within one file system);
2. ``flush`` and ``fsync`` it, so its bytes are on disk before it gets the target's name;
3. ``os.replace`` it onto the target (atomic on POSIX and Windows);
4. ``fsync`` the directory, so the rename itself survives a power cut.

If anything fails before step 3 (an exception in the caller's block, a full disk,
Ctrl-C), the temporary file is removed and the target is untouched. A process killed
with SIGKILL cannot clean up: it may leave a hidden ``.<name>.<random>.tmp`` file next
to the target, but the target itself is still the old, complete file.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from ..errors import ConfigError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", *, encoding: str = "utf-8") -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit, atomically move it onto ``path``.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (text in ``encoding``). If the target already
    exists, the new file keeps its permission bits. Usage::

        with atomic_write("model.safetensors") as f:
            f.write(payload)
    """
    if mode not in ("wb", "w"):
        raise ConfigError(f"mode must be 'wb' or 'w' (atomic_write only creates whole files), got {mode!r}")
    target = Path(path)
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot write {target}: directory {directory} does not exist; create it first")

    tmp = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
    # 0o666 minus the umask, like open(); O_EXCL so we never write into someone else's file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, mode, encoding=None if mode == "wb" else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if target.exists():
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Atomically replace ``path`` with ``data``."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """Atomically replace ``path`` with ``text`` encoded as ``encoding``."""
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)


def _fsync_directory(directory: Path) -> None:
    """Persist a rename by syncing its directory (POSIX only; Windows cannot open directories)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
