"""One writer per output: an exclusive lock beside each resumable output, taken before any model call.

A file output `PATH` is locked by `PATH.lock` beside it, an output directory by `DIR/.rlaif.lock` inside
it. The lock is an OS advisory lock (`fcntl.flock`) on that file, so the kernel drops it when its process
dies, even on SIGKILL: a crashed run never leaves a lock in the way. The file also holds the holder's
pid, host and start time, for the message a second writer gets. Where `fcntl` is missing (Windows) or
the file system refuses `flock`, the lock is the file itself (created with O_EXCL), and one whose pid no
longer runs on this host is stale and taken over.

What the lock created, it removes on release: the lock file, an output file still empty (a run that
failed before its first row leaves no 0-byte file), and directories made for the output that stayed
empty. Nothing that existed before is removed. A process may take a lock it already holds (nested
commands: `synth` runs `label` on its own directory). Stdlib only, beside `records`.
"""
from __future__ import annotations

import errno
import functools
import inspect
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from rlaif.errors import RlaifError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

DIR_LOCK = ".rlaif.lock"
_STALE_EMPTY_S = 10.0  # an O_EXCL lock file still empty after this long lost its writer before it wrote
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}

_held: dict[str, OutputLock] = {}  # lock file -> the lock this process holds on it
_held_guard = threading.Lock()


class OutputLocked(RlaifError):
    """Another process is writing this output."""


def lock_path(path: str | Path, *, directory: bool = False) -> Path:
    path = Path(path)
    return path / DIR_LOCK if directory else path.with_name(path.name + ".lock")


class OutputLock:
    """The exclusive lock on one output (a file, or a directory with `directory=True`)."""

    def __init__(self, path: str | Path, *, directory: bool = False):
        self.output = Path(path)
        self.directory = directory
        self.path = lock_path(self.output, directory=directory)
        self._key = os.path.abspath(self.path)
        self._fd: int | None = None
        self._depth = 0
        self._made_dirs: list[Path] = []
        self._made_output = False

    def acquire(self) -> OutputLock:
        with _held_guard:
            mine = _held.get(self._key)
            if mine is not None:  # re-entered by the process that holds it
                mine._depth += 1
                return mine
            self._made_dirs = _make_dirs(self.output if self.directory else self.output.parent)
            try:
                self._fd = _acquire(self.path)
            except BaseException:
                _remove_empty_dirs(self._made_dirs)
                raise
            self._made_output = not self.directory and not self.output.exists()
            self._depth = 1
            _held[self._key] = self
            return self

    def release(self) -> None:
        with _held_guard:
            mine = _held.get(self._key)
            if mine is None:
                return
            mine._depth -= 1
            if mine._depth > 0:
                return
            del _held[self._key]
            mine._drop()

    def _drop(self) -> None:
        if self._made_output:
            try:
                if self.output.stat().st_size == 0:
                    self.output.unlink()
            except FileNotFoundError:
                pass
        # unlinked while still held: a process that opened it meanwhile sees another inode and retries
        self.path.unlink(missing_ok=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        _remove_empty_dirs(self._made_dirs)

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


@contextmanager
def output_lock(path: str | Path, *, directory: bool = False):
    """Hold the exclusive lock on `path` for the block; a second writer gets `OutputLocked` (exit 2)."""
    lock = OutputLock(path, directory=directory).acquire()
    try:
        yield lock
    finally:
        lock.release()


F = TypeVar("F", bound=Callable[..., Any])


def locks_output(param: str, *, directory: bool = False) -> Callable[[F], F]:
    """Decorate a command function so it runs holding the lock on its argument `param` (none if it is None)."""

    def wrap(fn: F) -> F:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def locked(*args: Any, **kwargs: Any) -> Any:
            path = sig.bind(*args, **kwargs).arguments.get(param)
            if path is None:
                return fn(*args, **kwargs)
            with output_lock(path, directory=directory):
                return fn(*args, **kwargs)

        return locked  # type: ignore[return-value]

    return wrap


# ---- taking the lock ------------------------------------------------------------------------------

def _holder_text() -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}) + "\n"


def _acquire(path: Path) -> int:
    if fcntl is not None:
        fd = _acquire_flock(path)
        if fd is not None:
            return fd
    return _acquire_excl(path)


def _acquire_flock(path: Path) -> int | None:
    """The fd holding the flock; None where the file system has no flock."""
    for _ in range(20):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # the last holder removed the directory it had made: make it again
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            busy = e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
            holder = _read_holder(fd) if busy else {}
            os.close(fd)
            if e.errno in _NO_FLOCK:
                return None
            if busy:
                raise _locked(path, holder, stale_hint=False) from None
            raise
        if _same_file(fd, path):
            text = _holder_text().encode()
            os.pwrite(fd, text, 0)  # overwrite, then cut: a reader never sees it empty after the first time
            os.ftruncate(fd, len(text))
            return fd
        os.close(fd)  # its holder released and removed it between our open and flock: take the new one
    raise _locked(path, {}, stale_hint=False)


def _acquire_excl(path: Path) -> int:
    for _ in range(20):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        except FileExistsError:
            if _stale(path):
                path.unlink(missing_ok=True)
                continue
            holder = _read_holder_path(path)
            raise _locked(path, holder, stale_hint=True) from None
        os.write(fd, _holder_text().encode())
        return fd
    raise _locked(path, _read_holder_path(path), stale_hint=True)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _read_holder(fd: int) -> dict:
    """Who holds it; the holder writes this just after locking, so an empty file is given a moment."""
    for _ in range(20):
        try:
            holder = _parse_holder(os.pread(fd, 4096, 0))
        except OSError:
            return {}
        if holder:
            return holder
        time.sleep(0.025)
    return {}


def _read_holder_path(path: Path) -> dict:
    try:
        return _parse_holder(path.read_bytes())
    except OSError:
        return {}


def _parse_holder(data: bytes) -> dict:
    try:
        obj = json.loads(data.decode("utf-8", "replace") or "{}")
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _stale(path: Path) -> bool:
    """An O_EXCL lock whose holder is gone: its pid no longer runs here, or it never wrote its holder."""
    holder = _read_holder_path(path)
    if not holder:
        try:
            return time.time() - path.stat().st_mtime > _STALE_EMPTY_S
        except FileNotFoundError:
            return True
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False  # another machine's process: no way to tell, so it is not ours to break
    return not _pid_alive(holder["pid"])


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        import ctypes

        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return kernel32.GetLastError() == 5  # access denied: it exists
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _locked(path: Path, holder: dict, *, stale_hint: bool) -> OutputLocked:
    output = path.parent if path.name == DIR_LOCK else path.with_name(path.name[:-len(".lock")])
    who = f"pid {holder['pid']}" if "pid" in holder else "another process"
    if holder.get("host") and holder["host"] != socket.gethostname():
        who += f" on {holder['host']}"
    since = f" since {holder['started']}" if holder.get("started") else ""
    fix = "wait for it to finish (or stop it), or write to another output path"
    if stale_hint:
        fix += f"; if that process is gone, delete {path}"
    return OutputLocked(f"{output} is being written by {who}{since} (lock {path}). Fix: {fix}")


# ---- what the lock created ------------------------------------------------------------------------

def _make_dirs(d: Path) -> list[Path]:
    """Create `d` and missing parents; return the ones created, deepest first."""
    made = []
    p = d
    while not p.exists() and p != p.parent:
        made.append(p)
        p = p.parent
    d.mkdir(parents=True, exist_ok=True)
    return made


def _remove_empty_dirs(made: list[Path]) -> None:
    for d in made:
        try:
            d.rmdir()
        except OSError:  # not empty (the run wrote into it) or already gone
            return
