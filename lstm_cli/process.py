"""What a command-line process sets up before a command and cleans up after it: BLAS threads
and an stdout that may be closed, full or cut short by its reader. Imports nothing heavy."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

terminated = False  # set when SIGTERM stopped the command: its exit code is 143, not Ctrl-C's 130


def _terminate(signum, frame) -> None:
    global terminated
    terminated = True
    raise KeyboardInterrupt


def stop_on_sigterm():
    """SIGTERM (``timeout``, Slurm, systemd, ``kill``) stops a command as Ctrl-C does, so a run's
    record says "interrupted" instead of being left "running"; the previous handler is returned
    (for ``restore_sigterm``). Only in the main thread, where Python delivers signals."""
    global terminated
    terminated = False
    try:
        return signal.signal(signal.SIGTERM, _terminate)
    except (ValueError, OSError):  # not the main thread
        return None


def restore_sigterm(previous) -> None:
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except (ValueError, OSError):
            pass


def exit_code(code: int) -> int:
    """``code``, except that an interruption (130, Ctrl-C) by SIGTERM exits 143 (128 + SIGTERM)."""
    return 128 + signal.SIGTERM if code == 128 + signal.SIGINT and terminated else code


def interrupted_inside(err: BaseException | None) -> bool:
    """Whether ``err`` is a Ctrl-C or SIGTERM, or carries one that Python wrapped on its way up:
    an interrupt while a class is being created (an import, a dataclass) surfaces as
    "RuntimeError: Error calling __set_name__ ...", whose cause is the KeyboardInterrupt."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def interruption() -> str:
    return "terminated" if terminated else "interrupted"


def single_threaded_blas() -> None:
    """One BLAS thread, whatever the environment says, exactly as sweep workers (pool.py): the
    same seed gives the same bits in ``train`` as in a sweep (with OMP_NUM_THREADS=2 they
    differed at H=512), and the matrices are tiny (B x H, H x 4H), so threads cost more than
    they gain on a busy machine. Takes effect only before numpy is first imported."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"


TRAINING_COMMANDS = ("train", "run", "sweep")


def prepare_for(command: str | None) -> None:
    """What the ``lstm-demo`` process needs before its command starts: one that trains keeps freed
    memory (``reuse_freed_memory``). Called by the program's entry point (``__main__``), not by
    the command line's app, which tests and other programs run inside their own process."""
    if command in TRAINING_COMMANDS:
        reuse_freed_memory()


_keeping_freed_memory = False  # set by reuse_freed_memory


def reuse_freed_memory() -> bool:
    """Make the C library's malloc keep freed memory for the next allocation (process-wide).

    A training step allocates the same dozen large arrays every time. By default
    glibc serves large arrays with fresh pages from the OS and returns them when
    they are freed, so every step pays a page fault per 4 KiB it touches: about
    3,000 faults and a third of the step's time at B=32, H=32, T=200 (measured
    with benchmarks/bench_step.py), and twice the time of a seed stack's forward
    pass (benchmarks/bench_stack.py). After this call large arrays come from the
    heap and freed memory stays there, so the process keeps its peak memory until
    it exits (``freed_memory_kept``, which the memory checks count as room). The
    commands that train call it (``prepare_for``), and so do a sweep's worker processes
    (pool.py); code that imports lstm_cli as a library decides for itself. Returns
    False, changing nothing, where the C library has no glibc ``mallopt``.
    """
    global _keeping_freed_memory
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's <malloc.h>
    _keeping_freed_memory = bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))
    return _keeping_freed_memory


def freed_memory_kept() -> int:
    """Bytes that malloc keeps free for this process after ``reuse_freed_memory`` (what earlier
    steps and runs freed): room for the next arrays that the system's figures (available memory,
    mapped address space, the cgroup's usage) count as used. 0 when memory is not being kept, or
    where the C library has no glibc ``mallinfo2``."""
    if not _keeping_freed_memory:
        return 0
    import ctypes

    class MallInfo2(ctypes.Structure):  # glibc's struct mallinfo2, ten size_t fields
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                          "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return 0
    mallinfo2.restype = MallInfo2
    return int(mallinfo2().fordblks)  # the free bytes of malloc's arenas


def discard_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush of what is left in its
    buffer cannot fail again (and print a traceback) on the way out."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (Typer's CliRunner)
        pass


class ReaderGone(Exception):
    """stdout's reader closed the pipe (click would turn EPIPE into exit 1 on its own)."""


class Stopped(Exception):
    """Ctrl-C or SIGTERM (typer would turn KeyboardInterrupt into a silent exit 130 on its own)."""


@contextlib.contextmanager
def passed_on():
    """A closed stdout and an interruption as exceptions that typer and click pass on unchanged
    to the command line's boundary, which decides their exit code and words."""
    try:
        yield
    except BrokenPipeError:
        raise ReaderGone from None
    except KeyboardInterrupt:
        raise Stopped from None


OUT_OF_MEMORY = ("out of memory (the estimate was under the limit, but the allocation failed); use a "
                 "smaller --batch, --hidden or --gap, or set LSTM_DEMO_MEMORY_LIMIT")


@contextlib.contextmanager
def command():
    """What a command runs inside: SIGTERM stops it as Ctrl-C does (``stop_on_sigterm``) and
    Python's warnings are silent (``no_warnings``); both are restored afterwards."""
    previous = stop_on_sigterm()
    try:
        with no_warnings():
            yield
    finally:
        restore_sigterm(previous)


@contextlib.contextmanager
def no_warnings():
    """Python's warnings silent, whatever PYTHONWARNINGS says: numpy's RuntimeWarnings (overflow
    in a product of 1e308-scaled weights, inf in a checkpoint) are measured and reported as
    numbers (inf, nan) by the tool itself, and under PYTHONWARNINGS=error a warning would
    become a traceback instead of a number."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


MAX_WORD = 200  # a 5000-digit value in a message is shown by its head and its length


def one_line(message: str) -> str:
    """``message`` on one line, every word longer than MAX_WORD abridged."""
    return " ".join(word if len(word) <= MAX_WORD else f"{word[:60]}... ({len(word)} characters)"
                    for word in message.split())


def say_and_exit(lines: list[str], code: int) -> None:
    """The error lines on stderr and exit ``code``; an stderr that cannot take them (2>/dev/full,
    closed) changes nothing about the exit code (Python's own exit would make it 120)."""
    try:
        for line in lines:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        exit_now(code)
    sys.exit(code)


def exit_now(code: int) -> None:
    """Exit with ``code`` at once: the interpreter's last flush of a stream that cannot be written
    (stderr into /dev/full) would turn any exit code into 120."""
    discard_stdout()
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    except OSError:
        pass
    os._exit(code)


def flush_stdout() -> None:
    """Flush what a command wrote before an error line follows it; an stdout that is closed or
    cannot take it any more is given up on (the error line on stderr is what matters now)."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        discard_stdout()


def accept_click_completion_order() -> None:
    """Accept click's ``_LSTM_DEMO_COMPLETE=bash_source`` as well as typer's ``source_bash``."""
    shell, _, instruction = os.environ.get("_LSTM_DEMO_COMPLETE", "").partition("_")
    if instruction in ("source", "complete") and shell in ("bash", "zsh", "fish", "powershell", "pwsh"):
        os.environ["_LSTM_DEMO_COMPLETE"] = f"{instruction}_{shell}"


def replace_what_cannot_be_encoded() -> None:
    """stdout and stderr in the C locale or with PYTHONIOENCODING=ascii: a character they cannot
    encode (rich's ellipsis in a narrow table) becomes "?" instead of a UnicodeEncodeError. The
    bars themselves turn ASCII there (render.unicode_ok)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            "\u2026\u2588".encode(stream.encoding or "ascii")
        except (UnicodeEncodeError, LookupError):
            stream.reconfigure(errors="replace")
        except AttributeError:  # closed (None), or not a text file
            pass
