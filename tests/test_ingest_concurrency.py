"""Many clients at once: every lead exactly once, whatever the replays and their timing.

50 parallel clients post 5,000 distinct leads over real HTTP; one lead in five is posted
again by another client at the same time with the same Idempotency-Key, as an identical
replay or with a changed body (a client reusing the key). Each lead gets exactly one 201,
an identical replay gets 200 naming the same lead, a changed body gets 422 and changes
nothing, and the table holds each lead once.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from typing import Any

import aiohttp
import pytest
from ingest_server import API_KEYS, running

from leadtui.store import LeadQuery

CLIENTS = 50
LEADS = 5000
REPLAY_EVERY = 5


def lead(n: int, *, retry: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"Buyer {n}",
        "phone": f"+9198{n:08d}",
        "product": random.Random(n).choice(["Fly Ash Bricks", "Cement", "Roof Tiles"]),
        "source": "website",
    }
    if retry and changed(n):
        body["message"] = "sent again"
    return body


def changed(n: int) -> bool:
    """Whether lead ``n``'s second copy has another body (half of them)."""
    return n % (2 * REPLAY_EVERY) == 0


async def post_all(base: str, leads: int) -> list[tuple[int, bool, int, int]]:
    """(lead number, whether it was the changed retry, status, lead id) for every request."""
    work: asyncio.Queue[tuple[int, bool]] = asyncio.Queue()
    jobs = [(n, False) for n in range(leads)]
    jobs += [(n, True) for n in range(0, leads, REPLAY_EVERY)]
    random.Random(7).shuffle(jobs)
    for job in jobs:
        work.put_nowait(job)
    results: list[tuple[int, bool, int, int]] = []

    async def client(session: aiohttp.ClientSession) -> None:
        while not work.empty():
            n, retry = work.get_nowait()
            async with session.post(
                f"{base}/api/leads",
                json=lead(n, retry=retry),
                headers={"x-api-key": API_KEYS["website"], "Idempotency-Key": f"lead-{n}"},
            ) as response:
                answer = await response.json(content_type=None)
                results.append((n, retry, response.status, answer.get("id")))

    timeout = aiohttp.ClientTimeout(total=300)
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
    return results


@pytest.mark.slow
@pytest.mark.parametrize("leads", [LEADS])
async def test_50_clients_5000_leads_with_replays_every_lead_exactly_once(
    sqlite_url: str, leads: int
) -> None:
    await check_exactly_once(sqlite_url, leads)


@pytest.mark.slow
@pytest.mark.postgres
async def test_concurrent_clients_on_postgresql(pg_url: str) -> None:
    await check_exactly_once(pg_url, 1000)


async def check_exactly_once(db_url: str, leads: int) -> None:
    with running(db_url) as server:
        results = await post_all(server.url, leads)
        store = server.store

        replayed = range(0, leads, REPLAY_EVERY)
        assert Counter(status for _, _, status, _ in results) == {
            201: leads,
            200: sum(not changed(n) for n in replayed),
            422: sum(changed(n) for n in replayed),
        }
        ids: dict[int, set[int]] = defaultdict(set)
        # Whichever copy came first made the lead; the other changed nothing.
        first_was_retry = {n: retry for n, retry, status, _ in results if status == 201}
        for n, _, status, lead_id in results:
            if status != 422:
                ids[n].add(lead_id)
        assert all(len(found) == 1 for found in ids.values()), "a replay named another lead"
        assert len({next(iter(found)) for found in ids.values()}) == leads

        assert store.count_leads() == leads
        stored = store.list_leads(LeadQuery(limit=leads + 1))
        assert Counter(x.phone for x in stored) == {lead(n)["phone"]: 1 for n in range(leads)}
        by_phone = {x.phone: x for x in stored}
        for n in range(leads):
            want = lead(n, retry=first_was_retry[n]).get("message")
            assert by_phone[lead(n)["phone"]].message == want, "a replay changed the lead"
        assert store.pending_raw_ids() == []
        # A key reused for another body is refused, and that body kept for review (README).
        kept = store.review_items(limit=leads)
        assert len(kept) == sum(changed(n) for n in replayed)
        assert all("Idempotency-Key" in (item.error or "") for item in kept)
