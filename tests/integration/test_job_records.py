"""Job records on real PostgreSQL: the repository (add, get, newest-first pages with filters
and a cursor, progress that appends errors, the end of a job, and running jobs taken by one
worker at a time, raced over two real transactions), and the admin routes that read them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from scheduler.bootstrap import Services
from scheduler.domain.errors import InvalidCursor
from scheduler.domain.jobs import Job, JobError, JobStatus
from tests.builders import auth, new_tenant, new_token, unique
from tests.integration.test_bad_input import assert_problem

pytestmark = pytest.mark.integration


def new_job(kind: str, at: datetime, **fields: Any) -> Job:
    return Job(
        id=uuid.uuid4(),
        kind=kind,
        status=fields.pop("status", JobStatus.RUNNING),
        created_by="admin",
        created_at=at,
        updated_at=at,
        **fields,
    )


async def add(services: Services, *jobs: Job) -> None:
    async with services.uow() as uow:
        for job in jobs:
            await uow.jobs.add(job)
        await uow.commit()


async def read(services: Services, job_id: uuid.UUID) -> Job:
    async with services.uow() as uow:
        job = await uow.jobs.get(job_id)
    assert job is not None
    return job


@pytest.fixture
async def user(client: httpx.AsyncClient, admin_token: str) -> str:
    tenant = await new_tenant(client, admin_token)
    return await new_token(client, admin_token, tenant["id"], "not-an-admin")


# ---- the repository ----------------------------------------------------------------------


async def test_a_job_is_stored_and_read_back_whole(services: Services) -> None:
    now = services.clock()
    lease, device = uuid.uuid4(), uuid.uuid4()
    job = new_job(
        unique("rebalance"),
        now,
        params={"strategy": "spread", "maxMoves": 10},
        items=({"allocationId": str(lease), "to": str(device)}, {"allocationId": "x"}),
        total=2,
        counts={"moved": 0},
        errors=(JobError(0, "x", "no_capacity", "no device"),),
    )
    await add(services, job)

    assert await read(services, job.id) == job
    async with services.uow() as uow:
        assert await uow.jobs.get(uuid.uuid4()) is None
        locked = await uow.jobs.get(job.id, lock=True)
    assert locked == job


async def test_ids_and_instants_in_its_json_are_stored_as_strings(services: Services) -> None:
    now = services.clock()
    lease = uuid.uuid4()
    job = new_job(unique("rebalance"), now, params={"since": now}, items=({"lease": lease},))
    await add(services, job)

    stored = await read(services, job.id)
    assert stored.params == {"since": now.isoformat()}
    assert stored.items == ({"lease": str(lease)},)


async def test_progress_sets_done_and_counts_and_appends_errors(services: Services) -> None:
    now = services.clock()
    job = new_job(unique("rebalance"), now, items=({"n": 0}, {"n": 1}, {"n": 2}), total=3)
    await add(services, job)
    first = JobError(0, "lease-a", "no_capacity", "no device fits")
    second = JobError(2, "lease-c", "allocation_not_active", "the lease ended")

    async with services.uow() as uow:
        await uow.jobs.advance(
            job.id, done=1, counts={"moved": 0, "failed": 1}, new_errors=[first], now=now
        )
        await uow.commit()
    later = now + timedelta(seconds=5)
    async with services.uow() as uow:
        await uow.jobs.advance(
            job.id, done=3, counts={"moved": 1, "failed": 2}, new_errors=[second], now=later
        )
        await uow.commit()

    stored = await read(services, job.id)
    assert (stored.done, stored.total, stored.percent) == (3, 3, 100.0)
    assert stored.counts == {"moved": 1, "failed": 2}
    assert stored.errors == (first, second)
    assert stored.updated_at == later and stored.created_at == now
    assert stored.status is JobStatus.RUNNING and stored.finished_at is None


async def test_progress_beyond_the_total_is_refused(services: Services) -> None:
    now = services.clock()
    job = new_job(unique("rebalance"), now, total=1)
    await add(services, job)

    with pytest.raises(psycopg.errors.CheckViolation, match="jobs_progress_within_total_v1"):
        async with services.uow() as uow:
            await uow.jobs.advance(job.id, done=2, counts={}, new_errors=[], now=now)
            await uow.commit()
    assert (await read(services, job.id)).done == 0


async def test_a_finished_job_keeps_its_result_message_and_end(services: Services) -> None:
    now = services.clock()
    succeeded = new_job(unique("rebalance"), now)
    failed = new_job(succeeded.kind, now)
    await add(services, succeeded, failed)
    end = now + timedelta(minutes=1)

    async with services.uow() as uow:
        await uow.jobs.finish(
            succeeded.id, status=JobStatus.SUCCEEDED, result={"moved": 4}, message=None, now=end
        )
        await uow.jobs.finish(
            failed.id, status=JobStatus.FAILED, result=None, message="node gone", now=end
        )
        await uow.commit()

    done = await read(services, succeeded.id)
    assert (done.status, done.result, done.message) == (JobStatus.SUCCEEDED, {"moved": 4}, None)
    assert done.finished_at == end and done.updated_at == end
    assert done.percent == 100.0  # no work items, finished
    lost = await read(services, failed.id)
    assert (lost.status, lost.result, lost.message) == (JobStatus.FAILED, None, "node gone")
    async with services.uow() as uow:
        assert await uow.jobs.running(succeeded.kind, 10) == []


async def test_pages_are_newest_first_filtered_and_follow_the_cursor(services: Services) -> None:
    now = services.clock()
    kind, other = unique("rebalance"), unique("ray-submit")
    jobs = [new_job(kind, now - timedelta(minutes=n), items=({"n": n},), total=1) for n in range(5)]
    same_instant = [new_job(kind, now - timedelta(minutes=9)) for _ in range(2)]
    await add(services, *jobs, *same_instant, new_job(other, now))
    async with services.uow() as uow:
        await uow.jobs.finish(
            jobs[1].id, status=JobStatus.FAILED, result=None, message="x", now=now
        )
        await uow.commit()

    seen: list[uuid.UUID] = []
    cursor = None
    async with services.uow() as uow:
        while True:
            page = await uow.jobs.list(kind, None, 3, cursor)
            assert page.total == 7
            assert all(j.items == () for j in page.items)  # lists leave the work items out
            seen += [j.id for j in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        failed = await uow.jobs.list(kind, JobStatus.FAILED, 10, None)
        running = await uow.jobs.list(kind, JobStatus.RUNNING, 10, None)
        everything = await uow.jobs.list(None, None, 500, None)

    tied = sorted((j.id for j in same_instant), reverse=True)
    assert seen == [j.id for j in jobs] + tied
    assert [j.id for j in failed.items] == [jobs[1].id] and failed.total == 1
    assert running.total == 6 and jobs[1].id not in {j.id for j in running.items}
    assert {j.kind for j in everything.items} >= {kind, other}


async def test_a_cursor_this_service_never_issued_is_refused(services: Services) -> None:
    async with services.uow() as uow:
        with pytest.raises(InvalidCursor):
            await uow.jobs.list(None, None, 10, "not-a-cursor")


async def test_running_jobs_are_taken_oldest_first_and_never_by_two_workers(
    services: Services,
) -> None:
    now = services.clock()
    kind = unique("rebalance")
    oldest, middle, newest = (new_job(kind, now - timedelta(minutes=m)) for m in (3, 2, 1))
    finished = new_job(kind, now - timedelta(minutes=4), status=JobStatus.SUCCEEDED)
    await add(services, newest, oldest, finished, middle, new_job(unique("other"), now))

    async with services.uow() as first, services.uow() as second:
        taken_first = await first.jobs.running(kind, 1)
        taken_second = await second.jobs.running(kind, 10)  # skips what the first holds
        assert [j.id for j in taken_first] == [oldest.id]
        assert [j.id for j in taken_second] == [middle.id, newest.id]
        async with services.uow() as third:
            assert await third.jobs.running(kind, 10) == []  # every running one is held
        await first.jobs.advance(oldest.id, done=0, counts={"moved": 0}, new_errors=[], now=now)
        await first.commit()

    async with services.uow() as uow:
        assert [j.id for j in await uow.jobs.running(kind, 10)] == [oldest.id, middle.id, newest.id]


async def test_a_job_read_with_its_lock_is_skipped_by_workers(services: Services) -> None:
    now = services.clock()
    kind = unique("rebalance")
    job = new_job(kind, now)
    await add(services, job)

    async with services.uow() as holder, services.uow() as worker:
        assert await holder.jobs.get(job.id, lock=True) == job
        assert await worker.jobs.running(kind, 10) == []
        assert await worker.jobs.get(job.id) == job  # a plain read does not wait


# ---- the routes ----------------------------------------------------------------------------


async def test_an_admin_lists_jobs_without_their_items_and_reads_one_with_them(
    client: httpx.AsyncClient, services: Services, admin_token: str
) -> None:
    now = services.clock()
    kind = unique("rebalance")
    lease = uuid.uuid4()
    job = new_job(
        kind,
        now,
        params={"strategy": "spread"},
        items=({"allocationId": str(lease)}, {"allocationId": "b"}, {"allocationId": "c"}),
        total=3,
        done=1,
        counts={"moved": 1},
        errors=(JobError(0, str(lease), "no_capacity", "no device fits"),),
    )
    older = [new_job(kind, now - timedelta(minutes=m)) for m in (1, 2)]
    await add(services, job, *older)
    admin = auth(admin_token)

    r = await client.get("/scheduler/jobs", headers=admin, params={"kind": kind, "limit": 2})
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 3 and page["nextCursor"]
    assert [j["id"] for j in page["items"]] == [str(job.id), str(older[0].id)]
    listed = page["items"][0]
    assert listed["items"] is None
    assert listed["progress"] == {"done": 1, "total": 3, "percent": 33.3}
    assert listed["errors"] == [
        {"index": 0, "item": str(lease), "code": "no_capacity", "message": "no device fits"}
    ]
    rest = await client.get(
        "/scheduler/jobs",
        headers=admin,
        params={"kind": kind, "limit": 2, "cursor": page["nextCursor"]},
    )
    assert [j["id"] for j in rest.json()["items"]] == [str(older[1].id)]
    assert rest.json()["nextCursor"] is None
    finished = await client.get(
        "/scheduler/jobs", headers=admin, params={"kind": kind, "status": "succeeded"}
    )
    assert finished.json() == {"items": [], "total": 0, "nextCursor": None}

    one = await client.get(f"/scheduler/jobs/{job.id}", headers=admin)
    assert one.status_code == 200, one.text
    body = one.json()
    assert body == {
        **listed,
        "items": [{"allocationId": str(lease)}, {"allocationId": "b"}, {"allocationId": "c"}],
    }
    assert set(body) == {
        "id",
        "kind",
        "status",
        "progress",
        "counts",
        "errors",
        "params",
        "items",
        "result",
        "message",
        "createdBy",
        "createdAt",
        "updatedAt",
        "finishedAt",
    }
    assert (body["kind"], body["status"], body["createdBy"]) == (kind, "running", "admin")
    assert (body["params"], body["counts"]) == ({"strategy": "spread"}, {"moved": 1})
    assert body["result"] is None and body["finishedAt"] is None


async def test_a_finished_job_shows_its_outcome(
    client: httpx.AsyncClient, services: Services, admin_token: str
) -> None:
    now = services.clock()
    job = new_job(unique("rebalance"), now)
    await add(services, job)
    async with services.uow() as uow:
        await uow.jobs.finish(
            job.id,
            status=JobStatus.SUCCEEDED,
            result={"moved": 0},
            message="nothing to do",
            now=now,
        )
        await uow.commit()

    body = (await client.get(f"/scheduler/jobs/{job.id}", headers=auth(admin_token))).json()
    assert body["status"] == "succeeded" and body["progress"]["percent"] == 100.0
    assert (body["result"], body["message"]) == ({"moved": 0}, "nothing to do")
    assert datetime.fromisoformat(body["finishedAt"]) == now


async def test_only_admins_read_jobs(
    client: httpx.AsyncClient, services: Services, user: str
) -> None:
    job = new_job(unique("rebalance"), services.clock())
    await add(services, job)

    assert_problem(await client.get("/scheduler/jobs", headers=auth(user)), 403, "forbidden")
    assert_problem(
        await client.get(f"/scheduler/jobs/{job.id}", headers=auth(user)), 403, "forbidden"
    )


async def test_bad_requests_are_refused_with_stable_codes(
    client: httpx.AsyncClient, admin_token: str
) -> None:
    admin = auth(admin_token)

    missing = await client.get(f"/scheduler/jobs/{uuid.uuid4()}", headers=admin)
    assert_problem(missing, 404, "job_not_found")
    assert_problem(
        await client.get("/scheduler/jobs/not-a-uuid", headers=admin), 422, "validation_error"
    )
    for params in ({"status": "paused"}, {"limit": 0}, {"limit": 501}, {"kind": ""}):
        r = await client.get("/scheduler/jobs", headers=admin, params=params)
        assert_problem(r, 422, "validation_error")
    r = await client.get("/scheduler/jobs", headers=admin, params={"cursor": "bogus"})
    assert_problem(r, 422, "invalid_cursor")
