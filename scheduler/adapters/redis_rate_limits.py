"""Token buckets in Redis: one round trip per request (a Lua script checks and draws from
every bucket of the request at once), and requests go on while Redis is down or slow."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Sequence

from redis.asyncio import Redis

from scheduler.domain.rate_limits import UNCHECKED, RateLimit, RateVerdict

logger = logging.getLogger(__name__)

#: Draw one request from every bucket, or from none when any is empty.
#: KEYS: the buckets; ARGV: now (ms), then per bucket its rate (per s) and its burst.
#: Returns: allowed (0/1), the tightest bucket's burst, its tokens left, and the ms until
#: every bucket has a token again (0 when allowed).
TOKEN_BUCKETS = """
local now = tonumber(ARGV[1])
local tokens = {}
local allowed = 1
local wait = 0
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local left = tonumber(state[1]) or burst
  local at = tonumber(state[2]) or now
  left = math.min(burst, left + math.max(0, now - at) * rate / 1000)
  tokens[i] = left
  if left < 1 then
    allowed = 0
    wait = math.max(wait, math.ceil((1 - left) * 1000 / rate))
  end
end
local tight_limit, tight_left = 0, nil
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local left = tokens[i] - allowed
  redis.call('HSET', key, 'tokens', left, 'at', now)
  redis.call('PEXPIRE', key, math.ceil(burst * 1000 / rate) + 1000)
  if tight_left == nil or left < tight_left then
    tight_left, tight_limit = left, burst
  end
end
return {allowed, tight_limit, math.floor(tight_left or 0), wait}
"""

#: How long a check may take before the request goes on unchecked, and how long the limiter
#: then stays out of the way (an outage must not cost every request the timeout).
CHECK_TIMEOUT_SECONDS = 0.25
BACKOFF_SECONDS = 1.0


class RedisRateLimiter:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._script = redis.register_script(TOKEN_BUCKETS)
        self._prefix = prefix
        self._skip_until = 0.0

    async def check(self, buckets: Sequence[tuple[str, RateLimit]]) -> RateVerdict:
        """Draw one request from every bucket (or none, when any is empty)."""
        if not buckets or time.monotonic() < self._skip_until:
            return UNCHECKED
        keys = [f"{self._prefix}:{name}" for name, _ in buckets]
        args: list[float] = [time.time() * 1000]
        for _, limit in buckets:
            args += [limit.requests_per_second, limit.burst]
        try:
            allowed, limit, left, wait_ms = await asyncio.wait_for(
                self._script(keys=keys, args=args), CHECK_TIMEOUT_SECONDS
            )
        except Exception:
            logger.warning(
                "rate limits unchecked for %.0f s: Redis did not answer", BACKOFF_SECONDS
            )
            self._skip_until = time.monotonic() + BACKOFF_SECONDS
            return UNCHECKED
        slowest = min(rate.requests_per_second for _, rate in buckets)
        return RateVerdict(
            allowed=bool(allowed),
            limit=int(limit),
            remaining=max(0, int(left)),
            reset_seconds=math.ceil(max(0, int(limit) - int(left)) / slowest),
            retry_after_seconds=math.ceil(int(wait_ms) / 1000) if not allowed else 0,
        )
