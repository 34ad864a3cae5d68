"""Spot checks through the real pipeline, review service and SQL store (SQLite and
PostgreSQL): the share sampled, the decision events unchanged, what verdicts publish, and
the error-rate estimate from them."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest

from service.adapters.sql.store import SqlReviewStore
from service.contracts.codec import Limits, SourceRecord
from service.domain.access import Identity, Role
from service.domain.feedback import Feedback, FeedbackKind, FeedbackOutcome, NotRejected
from service.domain.model import Action, ModeratorReason, ReasonCode
from service.domain.policy import Policy, SitePolicy, Thresholds
from service.domain.review import ReviewItem
from service.domain.spot_check import SpotCheckRates, draw, estimate
from service.usecases.pipeline import Pipeline, Topics
from service.usecases.review_service import DecisionRequest, ReviewService
from tests.fakes import FixedClock, KeywordClassifier

N = 1000
RATE = 0.1
CLOCK = FixedClock()
MODERATOR = Identity("mo", Role.MODERATOR, None)


def pipeline(approve_rate: float = RATE, reject_rate: float = 0.0) -> Pipeline:
    site = SitePolicy(
        Thresholds(0.5, 0.9),
        Thresholds(0.5, 0.9),
        spot_check=SpotCheckRates(approve_rate, reject_rate),
    )
    return Pipeline(
        KeywordClassifier(), Policy("p-1", site), CLOCK, Topics("in", "out", "dlq"), Limits()
    )


def comments(n: int, text: str = "Thanks for the article") -> list[SourceRecord]:
    return [
        SourceRecord(
            "in",
            0,
            i,
            None,
            None,
            json.dumps({"id": f"c-{i}", "site_id": "herald", "text": f"{text} {i}"}).encode(),
        )
        for i in range(n)
    ]


def binomial_bounds(n: int, p: float, tail: float) -> tuple[int, int]:
    """The central interval holding all but `tail` of Binomial(n, p), at each end tail/2."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    below, low = 0.0, 0
    while below + pmf[low] < tail / 2:
        below += pmf[low]
        low += 1
    above, high = 0.0, n
    while above + pmf[high] < tail / 2:
        above += pmf[high]
        high -= 1
    return low, high


def wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


async def queued(store: SqlReviewStore, reason: str) -> list[ReviewItem]:
    page = await store.list_queue(None, reason=reason, now=CLOCK.now(), limit=N)
    return list(page.items)


async def test_a_tenth_of_1000_approvals_is_spot_checked_and_the_verdicts_give_the_rate(
    store: SqlReviewStore,
) -> None:
    outcome = pipeline().process_batch(comments(N))
    await store.record_decisions(outcome.stored)

    # every decision event is the automatic approval, final, with no trace of the check
    events = [json.loads(r.value) for r in outcome.records]
    assert len(events) == N
    assert all(e["action"] == "approve" and e["final"] for e in events)
    assert all(r["code"] != "spot_check" for e in events for r in e["reasons"])

    spot = await queued(store, ReasonCode.SPOT_CHECK.value)
    low, high = binomial_bounds(N, RATE, 0.001)  # 99.9 % of samples fall in here
    assert low <= len(spot) <= high, (low, len(spot), high)
    # and exactly the comments whose stable draw is below the rate
    expected = {f"c-{i}" for i in range(N) if draw("herald", f"c-{i}") < RATE}
    assert {i.comment_id for i in spot} == expected
    assert all(i.auto_action is Action.APPROVE and i.spot_check for i in spot)
    assert len(await queued(store, ReasonCode.BELOW_THRESHOLDS.value)) == len(spot)

    # known verdicts: 7 of the first 30 rejected, 23 confirmed
    service = ReviewService(store, CLOCK, decisions_topic="out")
    rejected, confirmed = spot[:7], spot[7:30]
    for item in rejected:
        await service.decide(
            MODERATOR,
            DecisionRequest("herald", item.comment_id, Action.REJECT, ModeratorReason.ABUSE),
        )
    for item in confirmed:
        await service.decide(
            MODERATOR,
            DecisionRequest("herald", item.comment_id, Action.APPROVE, ModeratorReason.OK),
        )

    # only the overturned ones publish a new final decision, the moderator's
    published = await store.outbox_pending(100)
    assert sorted(json.loads(r.value)["comment_id"] for r in published) == sorted(
        i.comment_id for i in rejected
    )
    assert all(json.loads(r.value)["action"] == "reject" for r in published)
    labels = await store.labels(site_id="herald")
    assert len(labels) == 30
    assert sum(label.overturned for label in labels) == 7
    audit = (await store.audit_log(None, limit=100)).items
    assert sum("not published" in a.detail for a in audit) == 23

    [counts] = await store.spot_check_counts(None)
    result = estimate(counts)
    assert (result.auto_action, result.checked, result.overturned) == (Action.APPROVE, 30, 7)
    assert result.waiting == len(spot) - 30
    assert result.rate == pytest.approx(7 / 30)
    assert result.interval is not None
    expected_low, expected_high = wilson(7, 30)
    assert result.interval.low == pytest.approx(expected_low)
    assert result.interval.high == pytest.approx(expected_high)
    assert await store.spot_check_counts(frozenset({"gazette"})) == []


async def test_a_replayed_batch_samples_nothing_twice_and_keeps_the_verdict(
    store: SqlReviewStore,
) -> None:
    records = comments(200)
    await store.record_decisions(pipeline().process_batch(records).stored)
    [first, *_] = await queued(store, "spot_check")
    service = ReviewService(store, CLOCK, decisions_topic="out")
    await service.decide(
        MODERATOR, DecisionRequest("herald", first.comment_id, Action.REJECT, ModeratorReason.SPAM)
    )

    await store.record_decisions(pipeline().process_batch(records).stored)  # a replay

    again = await queued(store, "spot_check")
    assert first.comment_id not in {i.comment_id for i in again}
    assert (await store.get_item("herald", first.comment_id)).decision is Action.REJECT


async def test_rejections_are_sampled_by_their_own_rate_and_overturns_publish_approvals(
    store: SqlReviewStore,
) -> None:
    outcome = pipeline(approve_rate=0.0, reject_rate=1.0).process_batch(comments(5, "buy now"))
    await store.record_decisions(outcome.stored)
    spot = await queued(store, "spot_check")
    assert len(spot) == 5
    assert all(i.auto_action is Action.REJECT for i in spot)
    service = ReviewService(store, CLOCK, decisions_topic="out")

    await service.decide(
        MODERATOR, DecisionRequest("herald", spot[0].comment_id, Action.APPROVE, ModeratorReason.OK)
    )

    [event] = [json.loads(r.value) for r in await store.outbox_pending(10)]
    assert (event["action"], event["final"], event["decided_by"]) == (
        "approve",
        True,
        "moderator:mo",
    )
    [counts] = await store.spot_check_counts(None)
    assert (counts.auto_action, counts.checked, counts.overturned, counts.waiting) == (
        Action.REJECT,
        1,
        1,
        4,
    )


async def test_feedback_on_a_waiting_spot_check_treats_it_as_the_published_decision(
    store: SqlReviewStore,
) -> None:
    await store.record_decisions(pipeline(approve_rate=1.0).process_batch(comments(1)).stored)
    at = CLOCK.now() + timedelta(minutes=1)

    # the comment is published as approved: a report merges into the waiting check...
    report = Feedback(FeedbackKind.REPORT, "herald", "c-0", "reader-1", "rude", at)
    assert await store.apply_feedback(report) is FeedbackOutcome.MERGED
    # ...and an appeal has nothing to contest
    with pytest.raises(NotRejected):
        await store.apply_feedback(Feedback(FeedbackKind.APPEAL, "herald", "c-0", "", "why", at))

    # a reader waits for the answer: confirming publishes, as a report's re-decision does
    service = ReviewService(store, CLOCK, decisions_topic="out")
    await service.decide(
        MODERATOR, DecisionRequest("herald", "c-0", Action.APPROVE, ModeratorReason.OK)
    )
    [event] = [json.loads(r.value) for r in await store.outbox_pending(10)]
    assert event["action"] == "approve"
