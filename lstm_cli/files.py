"""Files on a shared disk: read what anyone may have put there, write whole files, lock.

``check_name`` is the one rule for a name that becomes a directory under
``--out`` (a run name, a run key, a scenario name). Every reader of a scenario, config.yaml, result.json or checkpoint goes
through ``read_regular``: a FIFO, ``/dev/zero`` or a directory is refused
at once (opened without blocking, checked with fstat before one byte is
read), and a file larger than the reader's limit is refused by its size.
``nesting_depth`` bounds YAML before PyYAML's recursive composer sees it,
so 3000 nested brackets give one line, not a RecursionError.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
from pathlib import Path
from typing import Iterator

from lstm_cli.errors import BadInput
from lstm_cli.plain import to_json

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
    for anything but a regular file or for a symbolic link that leads out of the file's own
    directory, and ``ValueError`` for a file larger than ``limit``."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW  # a FIFO must not block the open
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if err.errno != errno.ELOOP or not os.path.islink(path):
            raise
        fd = os.open(_link_inside(path), flags)
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
            if total > limit:  # it grew while we read (or it is in /proc, where sizes are 0)
                raise ValueError(f"{path} is more than the {limit} bytes allowed")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _link_inside(path: Path) -> str:
    """The target of the symbolic link ``path`` when it stays inside the link's own directory
    (``a.yaml -> b.yaml``); NotRegular when it leads anywhere else (``-> /etc/shadow``, ``-> ../x``)."""
    home = os.path.realpath(path.parent)
    target = os.path.realpath(path)
    if os.path.commonpath([home, target]) != home:
        raise NotRegular(f"{path} is a symbolic link out of its directory (to {target}); it is not followed")
    return target


def yaml_loader():
    """PyYAML's C loader (libyaml, about 10x faster) when it is built in, else the pure-Python one;
    both are the safe loaders and give the same data."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_yaml(text: str, limit_depth: int = MAX_DEPTH):
    """``yaml.safe_load`` of a foreign file, with the fast loader, after the nesting bound
    (``nesting_depth``); ValueError for text nested deeper than ``limit_depth``."""
    import yaml

    if nesting_depth(text, fast=True) > limit_depth:
        raise ValueError(f"nested more than {limit_depth} levels deep")
    return yaml.load(text, Loader=yaml_loader())


def file_problem(path: Path, err: Exception) -> str:
    """One line for an error of ``read_regular``: the path and what is wrong with it."""
    if isinstance(err, (NotRegular, ValueError)):
        return str(err)
    if isinstance(err, OSError):
        return f"cannot read {path}: {err.strerror or err}"
    return f"cannot read {path}: {err}"


def nesting_depth(text: str, fast: bool = False) -> int:
    """The deepest nesting of mappings and sequences in the YAML ``text``, from PyYAML's event
    stream (iterative, unlike its composer); raises yaml.YAMLError for text that is not YAML.
    ``fast``: libyaml's parser, for records (its error messages differ from the pure-Python
    parser's, which a scenario's one-line errors quote)."""
    import yaml

    depth = deepest = 0
    for event in yaml.parse(text, Loader=yaml_loader() if fast else yaml.SafeLoader):
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


def check_out(out, option: str = "--out") -> None:
    """BadInput for an empty output directory: ``Path("")`` is the current directory, where
    records would land among the user's own files without a word."""
    if out is None or not str(out).strip():
        raise BadInput(f"{option} {str(out)!r}: give a directory for the run records (e.g. runs, or . for "
                       f"the current directory)")


# ---- files: atomic, whole, with the umask's mode ----

def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until every byte is written (a short write is retried; none at all raises)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and os.replace.

    The temporary file is created with mode 0666 minus the umask (what ``open`` gives a new
    file), not mkstemp's 0600, so a record is as readable as any other file the user writes."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def append_jsonl(path: Path, row: dict) -> None:
    """Append one line (O_APPEND, every byte checked); a reader ignores a torn last line."""
    line = (to_json(row, indent=None) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        write_all(fd, line)
    finally:
        os.close(fd)


def remove_stray_temporaries(directory: Path) -> list[str]:
    """Delete the ``.*.tmp`` files a killed writer left in ``directory``; call only while holding
    the lock that every writer of that directory takes. Returns the names removed."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


def make_directory(path: Path, what: str) -> None:
    """Create ``path`` (and its parents); BadInput naming it when that fails or when it exists as
    anything but a real directory (a file, a FIFO, a symbolic link that would lead the writes
    outside the output directory)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BadInput(f"cannot create {what} {path}: {err.strerror}") from None
    if path.is_symlink() or not path.is_dir():
        raise BadInput(f"cannot create {what} {path}: it exists and is not a directory")


# ---- the writer's lock ----

class Busy(BadInput):
    """Another process holds the lock of a run directory."""

    def __init__(self, directory: Path, holder: str):
        self.directory, self.holder = directory, holder
        super().__init__(f"{directory} is being written by another process ({holder}); "
                         f"wait for it to finish, or choose another name")


def _holder(fd: int) -> str:
    try:
        words = os.pread(fd, 64, 0).decode("ascii", "replace").split()
    except OSError:
        words = []
    return f"pid {words[0]}" if words and words[0].isdigit() else "pid unknown"


def lock_path(directory: Path) -> Path:
    """``.<name>.lock`` beside ``directory``: outside it, so a record holds only its own files."""
    directory = Path(directory)
    return directory.parent / f".{directory.name}.lock"


# A lock file is opened without following a link (a link planted in a shared --out would have the
# pid written into whatever it points at) and without blocking (a FIFO), and only a regular file
# with one name is used: a hard link to someone's file is refused as well.
LOCK_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
PID_WIDTH = 20  # the pid is written padded to this width, so it always covers an older one


def is_locked(directory: Path) -> bool:
    """Whether a process holds the lock of ``directory`` now (creates nothing, follows no link)."""
    try:
        fd = os.open(lock_path(directory), os.O_RDONLY | LOCK_FLAGS)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def _open_lock(directory: Path) -> int:
    """The lock file's descriptor, opened read-write (created when missing), or BadInput when it
    is a link, not a regular file, or a second name of another file."""
    path = lock_path(directory)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | LOCK_FLAGS, 0o666)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise BadInput(f"cannot lock {directory}: {path} is a symbolic link; a lock file is never "
                           f"followed (remove the link)") from None
        raise BadInput(f"cannot lock {directory}: {path}: {err.strerror}") from None
    info = os.fstat(fd)
    problem = (f"is {_kind(info.st_mode)}" if not stat.S_ISREG(info.st_mode)
               else "has other names (a hard link)" if info.st_nlink != 1
               else f"holds {info.st_size} bytes, not a pid" if info.st_size > 4 * PID_WIDTH else None)
    if problem is None:
        content = os.pread(fd, 4 * PID_WIDTH, 0)
        if content.strip() and not content.split()[0].isdigit():
            problem = "holds something other than a pid"
    if problem is not None:
        os.close(fd)
        raise BadInput(f"cannot lock {directory}: {path} {problem}; it is not this tool's lock file "
                       f"(remove it)")
    return fd


@contextlib.contextmanager
def locked(directory: Path, wait: bool = False) -> Iterator[None]:
    """Hold the exclusive lock of ``directory`` (``lock_path``, flock) for the ``with`` block.

    Taken at once when free; when another process holds it, ``wait=False`` raises ``Busy``
    and ``wait=True`` blocks until it is released (a process that dies releases it: the
    kernel closes its files). The lock file is never followed through a link nor truncated:
    the holder's pid is written over its first bytes, padded to a fixed width."""
    directory = Path(directory)
    fd = _open_lock(directory)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise Busy(directory, _holder(fd)) from None
            fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(OSError):  # the pid is only for messages: a full disk may refuse it
            os.pwrite(fd, f"{os.getpid():<{PID_WIDTH}}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
