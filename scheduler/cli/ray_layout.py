"""Where one data folder keeps its Ray head's files, with socket paths short enough.

Unix socket paths are short: 107 bytes for Ray's (``session_…/sockets/plasma_store``) and
only 97 for HAProxy's ``log`` socket (``<dir>/<56-hex node id>/metrics.sock``), so the temp
dirs live in ``<data_dir>/ray`` only when that path is short (``~/.phonefleet`` is);
otherwise in ``/tmp/pf-<hash of data_dir>``, linked from ``<data_dir>/ray/run``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

#: AF_UNIX paths hold at most 107 bytes on Linux (108 with the NUL) ...
_UNIX_PATH_MAX = 107
#: ... and HAProxy accepts at most 97 for a `log` socket ("socket path … too long (max 97)").
_HAPROXY_UNIX_PATH_MAX = 97
#: Longest suffix Ray appends to its temp dir for a socket:
#: ``/session_2026-11-23_12-57-09_123456_<pid up to 7>/sockets/plasma_store``.
_RAY_SOCKET_SUFFIX = 64
#: Longest suffix Serve appends to the HAProxy dir: ``/<56-hex node id>/metrics.sock``.
_HAPROXY_SOCKET_SUFFIX = 1 + 56 + 1 + len("metrics.sock")
#: Longest suffix multiprocessing's forkserver appends to TMPDIR: ``/pymp-xxxxxxxx/listener-…``.
_TMPDIR_SOCKET_SUFFIX = 40


@dataclass(frozen=True)
class RayLayout:
    """Where one data folder keeps its Ray node's files."""

    state: Path  # <data_dir>/ray: the node's pid, head.json, the `ray start` log
    run: Path  # short folder for sockets: `state` itself, or /tmp/pf-<hash>

    @classmethod
    def of(cls, data_dir: Path) -> RayLayout:
        state = data_dir.expanduser().resolve() / "ray"
        if cls._sockets_fit(state):
            return cls(state, state)
        digest = hashlib.sha256(str(state).encode()).hexdigest()[:10]
        return cls(state, Path("/tmp") / f"pf-{digest}")

    @staticmethod
    def _sockets_fit(run: Path) -> bool:
        """Whether every socket path under ``run`` stays within its limit."""
        base = len(str(run))
        return (
            base + len("/session") + _RAY_SOCKET_SUFFIX <= _UNIX_PATH_MAX
            and base + len("/tmp") + _TMPDIR_SOCKET_SUFFIX <= _UNIX_PATH_MAX
            and base + len("/hp") + _HAPROXY_SOCKET_SUFFIX <= _HAPROXY_UNIX_PATH_MAX
        )

    @property
    def pid_file(self) -> Path:
        return self.state / "node.pid"

    @property
    def info_file(self) -> Path:
        return self.state / "head.json"

    @property
    def log_file(self) -> Path:
        return self.state / "ray-start.log"

    @property
    def temp_dir(self) -> Path:
        return self.run / "session"

    @property
    def tmpdir(self) -> Path:
        return self.run / "tmp"

    @property
    def haproxy_dir(self) -> Path:
        return self.run / "hp"  # short: HAProxy's socket paths are limited to 97 bytes

    def prepare(self) -> None:
        for folder in (self.state, self.temp_dir, self.tmpdir, self.haproxy_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if self.run != self.state:
            link = self.state / "run"
            if not link.is_symlink():
                link.symlink_to(self.run, target_is_directory=True)

    def haproxy_env(self) -> dict[str, str]:
        """Move Serve's HAProxy config, sockets and state out of the shared /tmp/haproxy-serve."""
        folder = self.haproxy_dir
        return {
            "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(folder / "haproxy.cfg"),
            "RAY_SERVE_HAPROXY_SOCKET_PATH": str(folder / "admin.sock"),
            "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(folder),
            "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(folder / "server-state"),
            "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(folder / "metrics.sock"),
        }


# --------------------------------------------------------------------------- token auth
