"""Rate limits: token buckets per token, per tenant and per client address, and what a
check of them answers."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

#: A tenant as a whole may go this many times faster than each of its tokens.
TENANT_FACTOR = 10


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``requests_per_second`` on average, ``burst`` at once."""

    requests_per_second: float
    burst: int

    def scaled(self, factor: float) -> RateLimit:
        return RateLimit(self.requests_per_second * factor, math.ceil(self.burst * factor))


@dataclass(frozen=True, slots=True)
class RateVerdict:
    """Whether a request may go on, and what the tightest bucket has left (for the
    ``RateLimit-*`` headers); ``retry_after_seconds`` when it may not."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int = 0


#: What a check answers when no limit could be checked (the limiter is down): go on.
UNCHECKED = RateVerdict(True, 0, 0, 0)


def buckets_of(
    token_id: uuid.UUID, tenant_id: uuid.UUID, tenant_limit: RateLimit | None, default: RateLimit
) -> list[tuple[str, RateLimit]]:
    """The buckets a request of this token draws from: its own, and its tenant's (all its
    tokens together may go ``TENANT_FACTOR`` times faster)."""
    limit = tenant_limit or default
    return [(f"token:{token_id}", limit), (f"tenant:{tenant_id}", limit.scaled(TENANT_FACTOR))]


def address_bucket(address: str, default: RateLimit) -> list[tuple[str, RateLimit]]:
    """The bucket of requests whose token is unknown: per client address."""
    return [(f"address:{address}", default)]
