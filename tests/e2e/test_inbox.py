"""The inbox actor on the running fleet (issue 12 §3/§5): a platform message on the fleet's
inbox stream, published while the actor lies killed, is applied once it is back — the user's
lease ended with one usage record, its requests refused — and nothing is applied twice."""

from __future__ import annotations

import json
import os
import signal
import uuid

import httpx
import pytest
import redis

from actors.names import INBOX
from tests.e2e.conftest import RunningFleet, auth, eventually, new_token, seed_pool
from tests.e2e.test_kills import RESTART_SECONDS, cluster, pid_of, restarted, sql

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

__all__ = ["cluster"]  # the fixture, used by name


def test_a_message_sent_while_the_inbox_is_down_is_applied_once_it_is_back(
    fleet: RunningFleet, http: httpx.Client, cluster: None
) -> None:
    pool = seed_pool(http, fleet.admin_token, "inbox", 1)
    user = f"inbox-user-{uuid.uuid4().hex[:8]}"
    token = new_token(http, fleet.admin_token, pool.tenant_id, user)
    body = {"durationMinutes": 30, "preferredSpecs": pool.specs}
    lease = http.post("/scheduler/devices/allocate", headers=auth(token), json=body)
    assert lease.status_code == 201, lease.text
    stream = redis.Redis.from_url(str(fleet.settings.redis_url), decode_responses=True)
    message = {"type": "user.suspended", "data": json.dumps({"userId": user}), "id": user}

    pid = pid_of(name=INBOX)
    os.kill(pid, signal.SIGKILL)
    stream.xadd(fleet.env["PHONEFLEET_INBOX_STREAM"], message)
    stream.xadd(fleet.env["PHONEFLEET_INBOX_STREAM"], message)  # the platform sent it twice
    assert restarted(pid, name=INBOX) != pid

    ended = eventually(
        lambda: (
            rows
            if (
                rows := sql(
                    fleet,
                    "SELECT a.status, (SELECT count(*) FROM usage_records u"
                    " WHERE u.allocation_id = a.id) FROM allocations a WHERE a.id = %s::uuid",
                    lease.json()["allocationId"],
                )
            )[0][0]
            == "revoked"
            else None
        ),
        RESTART_SECONDS,
    )
    assert ended == [("revoked", 1)]
    refused = http.get("/scheduler/allocations", headers=auth(token))
    assert refused.status_code == 401  # its token was revoked
    applied = sql(fleet, "SELECT count(*) FROM inbox_messages WHERE message_id = %s", user)
    assert applied == [(1,)]
