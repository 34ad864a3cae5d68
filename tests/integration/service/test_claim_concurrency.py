"""Many instances claiming from one PostgreSQL queue: no item handed out twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from service.adapters.sql.store import SqlReviewStore
from service.domain.review import QueueOrder
from tests.conftest import fresh_postgres_database
from tests.integration.service.test_review_store import T0, stored

ITEMS = 2000
CLIENTS = 4


async def test_four_clients_claim_2000_items_each_exactly_once(postgres_url: str) -> None:
    with fresh_postgres_database(postgres_url) as url:
        seed = SqlReviewStore.from_url(url)
        await seed.migrate()
        await seed.record_decisions(
            [stored(f"c{n:05d}", at=T0 + timedelta(milliseconds=n)) for n in range(ITEMS)]
        )
        await seed.close()
        # separate stores: separate connection pools, as separate instances would have
        clients = [SqlReviewStore.from_url(url) for _ in range(CLIENTS)]

        async def drain(n: int, store: SqlReviewStore) -> list[tuple[str, str]]:
            got: list[tuple[str, str]] = []
            moderators = [f"m{n}-{k}" for k in range(4)]  # 4 workers per instance

            async def worker(moderator: str) -> None:
                while batch := await store.claim(
                    "herald",
                    moderator,
                    7,
                    order=QueueOrder.OLDEST,
                    lease=timedelta(hours=1),
                    now=T0,
                ):
                    got.extend((i.comment_id, moderator) for i in batch)

            await asyncio.gather(*(worker(m) for m in moderators))
            return got

        try:
            results = await asyncio.gather(*(drain(n, s) for n, s in enumerate(clients)))
        finally:
            for client in clients:
                await client.close()

    claims = [claim for result in results for claim in result]
    per_item = Counter(comment_id for comment_id, _ in claims)
    assert len(per_item) == ITEMS
    assert set(per_item.values()) == {1}
    # the work really was shared: every instance claimed some
    assert all(len(result) > 0 for result in results)
