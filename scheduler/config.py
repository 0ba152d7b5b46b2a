"""Settings, read from ``PHONEFLEET_*`` environment variables by entrypoints only."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EVENTS_STREAM = "phonefleet:events"


#: Settings no worker process is given as an argument (they would show in the dashboard):
#: the admin token (only ``phonefleet up`` writes it) and the platform's secrets and broker
#: URL (replicas and actors read those from their environment).
WORKER_SECRETS = {"admin_token", "jwt_secret", "trusted_proxy_secret", "rabbitmq_url"}


class Settings(BaseSettings):
    """Everything a PhoneFleet process needs to know; built once per process."""

    model_config = SettingsConfigDict(env_prefix="PHONEFLEET_", extra="ignore")

    database_url: str | None = None
    redis_url: str | None = None
    #: Files holding the database's and Redis's passwords (a mounted secret): the URLs then
    #: carry none, so neither does a Serve config or an actor's arguments. Read on connect.
    database_password_file: Path | None = None
    redis_password_file: Path | None = None
    admin_token: str | None = None
    http_port: int = 8000
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".phonefleet")

    db_pool_size: int = 10
    #: A statement that runs longer, or waits longer for a lock, is cancelled: the request is
    #: answered 503 with ``Retry-After`` instead of hanging.
    db_statement_timeout_seconds: float = Field(default=10.0, gt=0)
    db_lock_timeout_seconds: float = Field(default=2.0, gt=0)
    outbox_retention_hours: float = Field(default=72.0, gt=0)
    #: How long an ``Idempotency-Key`` answers retries with the first result.
    idempotency_retention_hours: float = Field(default=24.0, gt=0)
    token_cache_seconds: float = 10.0
    #: The platform's JWTs, accepted beside PhoneFleet's tokens when a key is set: its HMAC
    #: secret (HS256) or its public key, PEM (RS256, ES256). Secrets: never actor arguments
    #: (``for_workers``); replicas read them from their environment.
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_issuer: str = "cloudphone-platform"
    jwt_audience: str = "cloudphone-users"
    #: Roles (comma-separated) that make a platform user an admin, as ``isSuperAdmin`` does.
    jwt_admin_roles: str = "super_admin,admin"
    #: The quota (``POST /scheduler/admin/tenants``'s ``quota`` object, JSON) of a platform
    #: tenant seen for the first time; unset: such a tenant is refused (403).
    jwt_default_quota: dict[str, float] | None = None
    #: Behind the platform's gateway: its ``x-user-*`` headers are trusted only on requests
    #: carrying this secret in ``x-phonefleet-proxy-secret``.
    trusted_proxy_secret: str | None = None
    #: The platform's RabbitMQ: relayed events also go to its exchange, under the original
    #: scheduler's routing keys (``scheduler.domain.platform_events``).
    rabbitmq_url: str | None = None
    rabbitmq_exchange: str = "cloudphone.events"
    #: The inbox: where the platform's dead messages go, how often one is tried, and the
    #: Redis stream it also reads (platforms without RabbitMQ).
    rabbitmq_dead_letter_exchange: str = "cloudphone.dlx"
    inbox_max_attempts: int = Field(default=5, ge=1, le=100)
    inbox_stream: str = "phonefleet:inbox"
    #: A device limit lowered by the platform ends the leases above it after this; overdue
    #: billing (or ``payment_failures_before_suspension`` failed payments in a row) suspends
    #: the user after ``overdue_grace_seconds`` unless a payment comes first.
    quota_grace_seconds: float = Field(default=300.0, ge=0)
    overdue_grace_seconds: float = Field(default=3600.0, ge=0)
    payment_failures_before_suspension: int = Field(default=3, ge=1)
    #: Each token's token bucket (a tenant's ``rateLimit`` replaces it for its tokens; all
    #: tokens of a tenant together may go ten times faster).
    rate_limit_rps: float = Field(default=100.0, gt=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    events_stream: str = DEFAULT_EVENTS_STREAM
    events_stream_maxlen: int = 1_000_000

    device_reset_seconds: float = 2.0
    device_provision_seconds: float = 0.0
    node_reconcile_seconds: float = 5.0
    #: Node agents report every ``heartbeat_seconds``; a node silent for
    #: ``node_offline_after_seconds`` goes offline (its leases move) until heard again.
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    node_offline_after_seconds: float = Field(default=30.0, gt=0)
    node_actor_shards: int = 0
    #: How long a process ranks new requests from the candidate classes it read for alike
    #: ones (``RecentCandidates``); 0: every allocate reads the fleet.
    candidate_reuse_seconds: float = Field(default=1.0, ge=0)
    #: Where a node's NodeActor runs: ``any`` Ray node, or its ``host``'s own Ray node, the
    #: one started with the resource ``phonefleet-host:<host>`` (``actors.names.host_resource``;
    #: the actor then waits for that Ray node and comes back only there).
    node_actor_placement: Literal["any", "host"] = "any"
    #: Ray resources a NodeActor asks for besides, e.g. ``{"phone_host": 0.01}`` to run node
    #: actors on any of the cluster's phone hosts (cluster.yaml gives them that resource).
    node_actor_resources: dict[str, float] = Field(default_factory=dict)
    adb_host: str = "127.0.0.1"

    queue_cap_per_tenant: int = 100
    queue_cap_total: int = 10_000
    queue_aging_per_minute: float = 20.0
    queue_sweep_seconds: float = 5.0
    #: Opt-in preemption: tiers whose waiting entries may revoke leases of the preemptible
    #: tiers after a notice and ``preemption_grace_seconds`` (JSON lists in the environment).
    preempting_tiers: list[str] = Field(default_factory=list)
    preemptible_tiers: list[str] = Field(default_factory=lambda: ["free"])
    preemption_grace_seconds: float = 120.0

    lease_warning_seconds: float = 300.0
    booking_horizon_days: int = 30
    booking_cap_per_tenant: int = Field(default=100, ge=1)
    #: Minutes after its start a booking's user has to check in (``POST
    #: /scheduler/reservations/{id}/check-in``) before it is a no-show, for bookings that
    #: name none; 0: no check-in asked (the platform's console does not check in).
    booking_check_in_minutes: int = Field(default=0, ge=0, le=240)
    prewarm_seconds: float = 120.0

    #: Fault injection for the crash tests only: the process exits right after committing
    #: a command of these names (e.g. ``["AllocateDevice"]``), before answering.
    fault_exit_after_commit: list[str] = Field(default_factory=list)

    outbox_relay_seconds: float = 0.2
    housekeeper_max_sleep_seconds: float = 1.0
    job_tick_retention_seconds: float = 3600.0

    @model_validator(mode="after")
    def _one_actor_per_host(self) -> Settings:
        if self.node_actor_placement == "host" and self.node_actor_shards:
            raise ValueError("node_actor_placement 'host' runs one actor per node: no shards")
        return self

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, url: str | None) -> str | None:
        """Accept plain ``postgresql://`` URLs and point them at the psycopg 3 driver."""
        if url is None:
            return None
        for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @field_validator("database_password_file", "redis_password_file", mode="before")
    @classmethod
    def _expand_home(cls, path: str | Path | None) -> Path | None:
        """``~/…`` as the process's home; an empty value (an unset ``${…}``) is no file."""
        if path is None or str(path).strip() == "":
            return None
        return Path(path).expanduser()

    def for_workers(self) -> dict[str, object]:
        """These settings as the arguments of an actor or a Serve replica: never a secret
        (``WORKER_SECRETS``)."""
        return self.model_dump(mode="json", exclude=WORKER_SECRETS)

    def require_urls(self) -> tuple[str, str]:
        """The database and Redis URLs, which every running component needs."""
        if not self.database_url or not self.redis_url:
            raise RuntimeError("PHONEFLEET_DATABASE_URL and PHONEFLEET_REDIS_URL must be set")
        return (
            with_password_from(self.database_url, self.database_password_file),
            with_password_from(self.redis_url, self.redis_password_file),
        )


def has_password(url: str) -> bool:
    return urlsplit(url).password is not None


def redacted_url(url: str, mask: str = "***") -> str:
    """``url`` with its password replaced by ``mask`` (dropped when the mask is empty)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    userinfo = f"{user}:{mask}" if mask else user
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc}"))


def with_password_from(url: str, password_file: Path | None) -> str:
    """``url`` with the password ``password_file`` holds (its first line), if a file is given."""
    if password_file is None:
        return url
    try:
        password = password_file.read_text().splitlines()[0]
    except (OSError, IndexError) as error:
        raise RuntimeError(f"cannot read a password from {password_file}: {error}") from None
    return url_with_password(url, password)


def url_with_password(url: str, password: str) -> str:
    """``url`` with ``password`` (percent-encoded) in place of any it carried."""
    parts = urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]  # as written: already percent-encoded
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))
