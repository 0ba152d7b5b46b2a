"""The ports of one local PhoneFleet cluster, and probes for ports on this host.

:class:`ClusterPorts` sets every port a Ray head and Ray Serve open, derived from the Serve
HTTP port, so two clusters on one host never meet on a default port (GCS 6379 is Redis's
port; dashboard agent 52365, metric ports 44217/44227, HAProxy 8404/9101/8500 are fixed
defaults that make a second cluster fail in confusing ways). See
:meth:`ClusterPorts.from_http_port` for the layout.
"""

from __future__ import annotations

import dataclasses
import socket
from dataclasses import dataclass

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ClusterPorts:
    """Every port of one local Ray head with Serve; build it with :meth:`from_http_port`."""

    http: int  # Serve HTTP (HAProxy's frontend in HAProxy mode)
    dashboard: int
    gcs: int  # `ray start --port`
    ray_client_server: int
    node_manager: int
    object_manager: int
    dashboard_agent_listen: int  # the agent's HTTP port; `ray job submit` goes through it
    dashboard_agent_grpc: int
    runtime_env_agent: int
    metrics_export: int  # Prometheus text of Ray and application metrics
    dashboard_metric: int  # env DASHBOARD_METRIC_PORT
    autoscaler_metric: int  # env AUTOSCALER_METRIC_PORT
    haproxy_stats: int  # env RAY_SERVE_HAPROXY_STATS_PORT
    haproxy_metrics: int  # env RAY_SERVE_HAPROXY_METRICS_PORT
    fallback_proxy_http: int  # env RAY_SERVE_FALLBACK_PROXY_HTTP_PORT
    fallback_proxy_grpc: int  # env RAY_SERVE_FALLBACK_PROXY_GRPC_PORT
    grpc: int  # Serve gRPC options port (only bound when gRPC servicers are configured)
    redis: int  # embedded Redis, when PHONEFLEET_REDIS_URL is unset
    postgres: int  # embedded PostgreSQL's preferred port, when PHONEFLEET_DATABASE_URL is unset
    min_worker: int
    max_worker: int
    direct_ingress_min_http: int
    direct_ingress_max_http: int
    direct_ingress_min_grpc: int
    direct_ingress_max_grpc: int

    #: Single ports take ``http .. http + BLOCK - 1``.
    BLOCK = 20

    @property
    def metrics_url(self) -> str:
        """Prometheus text of Ray's and PhoneFleet's metrics (``phonefleet_*``)."""
        return f"http://{LOOPBACK}:{self.metrics_export}/metrics"

    #: Ranges live in 20000-32499 (below the kernel's ephemeral range, 32768+), in one of
    #: SLOTS slots of SLOT_SIZE ports: 150 worker ports, 50 + 50 direct-ingress ports.
    RANGE_BASE = 20000
    SLOT_SIZE = 250
    SLOTS = 50

    @classmethod
    def from_http_port(cls, http: int = 8000) -> ClusterPorts:
        """Derive every port from the Serve HTTP port.

        Single ports are ``http + 0 … http + 18`` (in field order); the worker and
        direct-ingress ranges sit in slot ``(http // 20) % 50`` of 20000-32499. Two clusters
        on one host are disjoint when their HTTP ports are at least 20 apart and less than
        1,000 apart (e.g. 8000, 8600, 8700, 8720); beyond that pick ports whose slots differ,
        or adjust fields with :func:`dataclasses.replace`.
        """
        if not 1024 <= http <= 32768 - cls.BLOCK:
            raise ValueError(f"http port {http} must lie in 1024..{32768 - cls.BLOCK}")
        base = cls.RANGE_BASE + cls.SLOT_SIZE * ((http // cls.BLOCK) % cls.SLOTS)
        return cls(
            http=http,
            dashboard=http + 1,
            gcs=http + 2,
            ray_client_server=http + 3,
            node_manager=http + 4,
            object_manager=http + 5,
            dashboard_agent_listen=http + 6,
            dashboard_agent_grpc=http + 7,
            runtime_env_agent=http + 8,
            metrics_export=http + 9,
            dashboard_metric=http + 10,
            autoscaler_metric=http + 11,
            haproxy_stats=http + 12,
            haproxy_metrics=http + 13,
            fallback_proxy_http=http + 14,
            fallback_proxy_grpc=http + 15,
            grpc=http + 16,
            redis=http + 17,
            postgres=http + 18,
            min_worker=base,
            max_worker=base + 149,
            direct_ingress_min_http=base + 150,
            direct_ingress_max_http=base + 199,
            direct_ingress_min_grpc=base + 200,
            direct_ingress_max_grpc=base + 249,
        )

    def ray_start_args(self) -> list[str]:
        """The port flags of ``ray start --head``."""
        return [
            f"--port={self.gcs}",
            f"--dashboard-port={self.dashboard}",
            f"--dashboard-agent-listen-port={self.dashboard_agent_listen}",
            f"--dashboard-agent-grpc-port={self.dashboard_agent_grpc}",
            f"--runtime-env-agent-port={self.runtime_env_agent}",
            f"--metrics-export-port={self.metrics_export}",
            f"--ray-client-server-port={self.ray_client_server}",
            f"--node-manager-port={self.node_manager}",
            f"--object-manager-port={self.object_manager}",
            f"--min-worker-port={self.min_worker}",
            f"--max-worker-port={self.max_worker}",
        ]

    def worker_start_args(self) -> list[str]:
        """The port flags of ``ray start --address …`` (a worker node: no GCS, dashboard or
        client server of its own)."""
        head_only = ("--port=", "--dashboard-port=", "--ray-client-server-port=")
        return [arg for arg in self.ray_start_args() if not arg.startswith(head_only)]

    def worker_ports(self) -> dict[str, int]:
        """The single ports a worker node binds on this host."""
        return {
            "node_manager": self.node_manager,
            "object_manager": self.object_manager,
            "dashboard_agent_listen": self.dashboard_agent_listen,
            "dashboard_agent_grpc": self.dashboard_agent_grpc,
            "runtime_env_agent": self.runtime_env_agent,
            "metrics_export": self.metrics_export,
        }

    def env(self) -> dict[str, str]:
        """The ports Ray and Serve only read from environment variables."""
        values = {
            "DASHBOARD_METRIC_PORT": self.dashboard_metric,
            "AUTOSCALER_METRIC_PORT": self.autoscaler_metric,
            "RAY_SERVE_HAPROXY_STATS_PORT": self.haproxy_stats,
            "RAY_SERVE_HAPROXY_METRICS_PORT": self.haproxy_metrics,
            "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": self.fallback_proxy_http,
            "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": self.fallback_proxy_grpc,
            "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": self.direct_ingress_min_http,
            "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": self.direct_ingress_max_http,
            "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": self.direct_ingress_min_grpc,
            "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": self.direct_ingress_max_grpc,
        }
        return {name: str(port) for name, port in values.items()}

    def head_ports(self) -> dict[str, int]:
        """The single ports the head and Serve bind on this host (not the embedded servers)."""
        skip = {"redis", "postgres", "grpc", "fallback_proxy_grpc"}
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name not in skip and not field.name.startswith(("min_", "max_", "direct_"))
        }


def port_free(port: int) -> bool:
    """Whether nothing listens on ``port`` on any address of this host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port the kernel reports free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def accepts(host: str, port: int) -> bool:
    """Whether ``host:port`` accepts a TCP connection within a second."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
