"""Processes and files of the servers ``phonefleet`` starts: pid files, signals, waits,
private files, and a lock that serializes two starts on one folder."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path


def read_pid(pid_file: Path) -> int | None:
    """The first number in ``pid_file``, if it holds one."""
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running_pid(pid_file: Path, process_name: str) -> int | None:
    """The pid in ``pid_file`` if that process is alive and is ``process_name``."""
    import psutil

    pid = read_pid(pid_file)
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or process.name() != process_name:
            return None
    except psutil.Error:
        return None
    return pid


def wait_gone(pids: list[int], timeout_s: float) -> bool:
    """Wait until none of ``pids`` runs; zombies count as gone, and our own children are
    reaped (PID 1 here reaps orphans ~1.3 s late)."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for pid in pids:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def terminate(pid: int, sig: signal.Signals, *, fallback: signal.Signals, wait_s: float) -> None:
    """Send ``sig`` and wait ``wait_s`` for the exit, then ``fallback`` and finally SIGKILL."""
    for current, timeout_s in ((sig, wait_s), (fallback, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, current)
        if wait_gone([pid], timeout_s):
            return
    raise RuntimeError(f"process {pid} survived SIGKILL")


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Serialize concurrent starts on one folder (two ``phonefleet up`` at once)."""
    with (folder / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_private(path: Path, text: str) -> None:
    """``text`` in ``path``, readable by this user only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def chown(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
