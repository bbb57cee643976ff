"""Reading files a user (or anyone with write access to a shared directory) hands us.

``check_name`` is the one rule for a name that becomes a directory under
``--out`` (a run name, a run key, a scenario name). Every reader of a scenario, config.yaml, result.json or checkpoint goes
through ``read_regular``: a FIFO, ``/dev/zero`` or a directory is refused
at once (opened without blocking, checked with fstat before one byte is
read), and a file larger than the reader's limit is refused by its size.
``nesting_depth`` bounds YAML before PyYAML's recursive composer sees it,
so 3000 nested brackets give one line, not a RecursionError.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from lstm_cli.errors import BadInput

MAX_TEXT_BYTES = 1 << 20  # a scenario or config.yaml is a few hundred bytes; 1 MiB is generous
MAX_DEPTH = 20  # mappings and lists nested deeper than any scenario needs (they use 3)
MAX_NAME_BYTES = 255 - len("..lock")  # a file name has 255 bytes; a run's lock file is ".<name>.lock"


class NotRegular(OSError):
    """The path exists but is not a regular file (a directory, FIFO, device or socket)."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def read_regular(path: Path, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Raises OSError (FileNotFoundError, PermissionError, ...) as ``open`` does, ``NotRegular``
    for anything but a regular file and ``ValueError`` for a file larger than ``limit``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not block the open
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular(f"{path} is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise ValueError(f"{path} is {info.st_size} bytes, more than the {limit} allowed")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:  # it grew while we read
                raise ValueError(f"{path} is more than the {limit} bytes allowed")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def file_problem(path: Path, err: Exception) -> str:
    """One line for an error of ``read_regular``: the path and what is wrong with it."""
    if isinstance(err, (NotRegular, ValueError)):
        return str(err)
    if isinstance(err, OSError):
        return f"cannot read {path}: {err.strerror or err}"
    return f"cannot read {path}: {err}"


def nesting_depth(text: str) -> int:
    """The deepest nesting of mappings and sequences in the YAML ``text``, from PyYAML's event
    stream (iterative, unlike its composer); raises yaml.YAMLError for text that is not YAML."""
    import yaml

    depth = deepest = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            deepest = max(deepest, depth)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
    return deepest


def check_name(name: str, what: str = "run name") -> None:
    """BadInput unless ``name`` is one plain directory name: not empty, not ``.`` or ``..``, no path
    separator or control character, at most 249 bytes in UTF-8 (255, less its lock file's)."""
    if not isinstance(name, str) or not name or name in (".", ".."):
        raise BadInput(f"bad {what} {name!r}: use a plain directory name")
    if "/" in name or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise BadInput(f"bad {what} {name!r}: no path separators or control characters")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadInput(f"bad {what} {name!r}: not valid UTF-8") from None
    if size > MAX_NAME_BYTES:
        raise BadInput(f"bad {what} {name[:40]!r}...: {size} bytes, more than the {MAX_NAME_BYTES} a run "
                       f"directory name may have (a file name has 255, and its lock file is .NAME.lock)")
