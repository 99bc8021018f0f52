"""Reading a user's file as UTF-8 text, with errors that say which file and how to fix it."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError


def read_utf8(path: str | os.PathLike, what: str) -> str:
    """Return the text of ``path`` decoded as UTF-8 (a leading byte-order mark is dropped).

    ``what`` names the file in messages ("series file", "text file", ...). Raises DataError if the
    file is missing, unreadable or not valid UTF-8 (with the byte offset and line of the first bad byte).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{what} {str(p)!r} does not exist or is not a file; check the path")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {what} {str(p)!r}: {e.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{what} {str(p)!r} is not valid UTF-8 (byte {e.start}, line {line}); "
            "re-save it as UTF-8, e.g. `iconv -f GBK -t UTF-8 in.txt > out.txt`"
        ) from None
