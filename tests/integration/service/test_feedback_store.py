"""Reports, appeals, reporter reliability and labels in the review store (SQLite and
PostgreSQL, through the `database_url` fixture)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.adapters.sql.store import SqlReviewStore
from service.domain.errors import ReviewNotFound
from service.domain.feedback import (
    Feedback,
    FeedbackKind,
    FeedbackOutcome,
    NotRejected,
    TrainingLabel,
    UnknownComment,
)
from service.domain.model import Action, ModeratorReason, ReasonCode
from service.domain.review import ModeratorDecision, QueueOrder, ReviewStatus
from tests.integration.service.test_review_store import LEASE, T0, draft, stored


def report(cid: str, reporter: str, reason: str = "insults people", minutes: int = 1) -> Feedback:
    return Feedback(
        FeedbackKind.REPORT, "herald", cid, reporter, reason, T0 + timedelta(minutes=minutes)
    )


def appeal(cid: str, reason: str = "this was fair criticism", minutes: int = 1) -> Feedback:
    return Feedback(
        FeedbackKind.APPEAL, "herald", cid, "ann", reason, T0 + timedelta(minutes=minutes)
    )


def moderator(
    cid: str, action: Action, reason: ModeratorReason, who: str = "alice"
) -> ModeratorDecision:
    return ModeratorDecision("herald", cid, action, reason, None, who)


async def test_a_report_puts_an_approved_comment_back_in_the_queue_with_its_reason(
    store: SqlReviewStore,
) -> None:
    await store.record_decisions([stored("a", action=Action.APPROVE)])
    with pytest.raises(ReviewNotFound):
        await store.get_item("herald", "a")

    assert await store.apply_feedback(report("a", "rita", "<b>spam link</b>")) is (
        FeedbackOutcome.QUEUED
    )

    item = await store.get_item("herald", "a")
    assert item.status is ReviewStatus.PENDING
    assert item.queued_at == T0 + timedelta(minutes=1)
    assert item.reasons[-1].code is ReasonCode.REPORTED
    assert "rita" in item.reasons[-1].detail
    assert "<b>spam link</b>" in item.reasons[-1].detail
    assert item.report_weight == pytest.approx(0.5)  # a new reporter counts one half
    page = await store.list_queue(None, reason="reported", now=T0 + timedelta(minutes=2))
    assert [i.comment_id for i in page.items] == ["a"]
    audit = await store.audit_log(None)
    assert audit.items[0].action == "requeue"
    assert audit.items[0].actor == "report:rita"


async def test_repeated_reports_are_merged_and_a_reporter_counts_once(
    store: SqlReviewStore,
) -> None:
    await store.record_decisions([stored("a", action=Action.APPROVE)])

    outcomes = [
        await store.apply_feedback(report("a", "rita")),
        await store.apply_feedback(report("a", "rita", "again!")),
        await store.apply_feedback(report("a", "sam", "off topic", minutes=3)),
    ]

    assert outcomes == [
        FeedbackOutcome.QUEUED,
        FeedbackOutcome.DUPLICATE,
        FeedbackOutcome.MERGED,
    ]
    item = await store.get_item("herald", "a")
    assert [r.code for r in item.reasons].count(ReasonCode.REPORTED) == 2
    assert item.report_weight == pytest.approx(1.0)
    assert item.queued_at == T0 + timedelta(minutes=1)  # a merge keeps its place


async def test_a_report_of_a_queued_comment_is_merged_into_its_item(
    store: SqlReviewStore,
) -> None:
    await store.record_decisions([stored("a")])

    assert await store.apply_feedback(report("a", "rita")) is FeedbackOutcome.MERGED
    item = await store.get_item("herald", "a")
    assert item.reasons[0].code is ReasonCode.SPAM_UNCERTAIN
    assert item.reasons[1].code is ReasonCode.REPORTED


async def test_the_moderators_verdict_updates_reporter_reliability_and_the_labels(
    store: SqlReviewStore,
) -> None:
    await store.record_decisions(
        [stored("a", action=Action.APPROVE), stored("b", action=Action.APPROVE)]
    )
    await store.apply_feedback(report("a", "rita"))
    await store.apply_feedback(report("b", "rita"))
    await store.apply_feedback(report("b", "sam"))
    later = T0 + timedelta(minutes=5)

    await store.decide(moderator("a", Action.REJECT, ModeratorReason.ABUSE), draft("a"), now=later)
    await store.decide(moderator("b", Action.APPROVE, ModeratorReason.OK), draft("b"), now=later)

    rita = await store.reporter_stats("herald", "rita")
    sam = await store.reporter_stats("herald", "sam")
    assert (rita.upheld, rita.dismissed) == (1, 1)
    assert (sam.upheld, sam.dismissed) == (0, 1)
    assert sam.reliability < rita.reliability == pytest.approx(0.5)
    labels = {e.comment_id: e for e in await store.labels()}
    assert labels["a"].label is TrainingLabel.ABUSE
    assert labels["a"].overturned  # auto-approved, then rejected by a human
    assert labels["a"].text == "text of a"
    assert labels["a"].labelled_by == "moderator:alice"
    assert labels["a"].labelled_at == later
    assert labels["b"].label is TrainingLabel.OK
    assert not labels["b"].overturned


async def test_a_re_reviewed_comment_is_not_re_queued_by_the_same_report(
    store: SqlReviewStore,
) -> None:
    await store.record_decisions([stored("a", action=Action.APPROVE)])
    await store.apply_feedback(report("a", "rita"))
    await store.decide(
        moderator("a", Action.APPROVE, ModeratorReason.OK), draft("a"), now=T0 + timedelta(hours=1)
    )

    again = await store.apply_feedback(report("a", "rita", minutes=90))

    assert again is FeedbackOutcome.DUPLICATE
    assert (await store.get_item("herald", "a")).status is ReviewStatus.DECIDED
    # a reader who has not reported it yet still can
    assert await store.apply_feedback(report("a", "tom", minutes=91)) is FeedbackOutcome.QUEUED
    item = await store.get_item("herald", "a")
    assert item.status is ReviewStatus.PENDING
    assert item.decision is None
    assert [r.code for r in item.reasons].count(ReasonCode.REPORTED) == 1  # this round's only


async def test_a_report_of_a_rejected_comment_changes_nothing(store: SqlReviewStore) -> None:
    await store.record_decisions([stored("a", action=Action.REJECT)])

    assert await store.apply_feedback(report("a", "rita")) is FeedbackOutcome.NOT_APPLICABLE
    with pytest.raises(ReviewNotFound):
        await store.get_item("herald", "a")
    # the moot report never counts for or against its reporter
    await store.apply_feedback(appeal("a"))
    await store.decide(
        moderator("a", Action.APPROVE, ModeratorReason.OK), draft("a"), now=T0 + timedelta(hours=1)
    )
    rita = await store.reporter_stats("herald", "rita")
    assert (rita.upheld, rita.dismissed) == (0, 0)


async def test_feedback_about_an_unknown_comment_is_refused(store: SqlReviewStore) -> None:
    with pytest.raises(UnknownComment):
        await store.apply_feedback(report("ghost", "rita"))
    with pytest.raises(UnknownComment):
        await store.apply_feedback(appeal("ghost"))


async def test_an_appeal_re_queues_a_rejection_once(store: SqlReviewStore) -> None:
    await store.record_decisions([stored("a", action=Action.REJECT)])

    assert await store.apply_feedback(appeal("a", "<script>x</script>")) is (FeedbackOutcome.QUEUED)
    item = await store.get_item("herald", "a")
    assert item.reasons[-1].code is ReasonCode.APPEALED
    assert "<script>x</script>" in item.reasons[-1].detail
    await store.decide(
        moderator("a", Action.REJECT, ModeratorReason.SPAM), draft("a"), now=T0 + timedelta(hours=1)
    )

    # the rejection stands; the same author appealing again changes nothing
    assert await store.apply_feedback(appeal("a", minutes=120)) is FeedbackOutcome.DUPLICATE
    assert (await store.get_item("herald", "a")).status is ReviewStatus.DECIDED
    [label] = await store.labels()
    assert label.label is TrainingLabel.SPAM
    assert not label.overturned


async def test_an_appeal_of_an_approved_comment_is_refused_and_leaves_no_trace(
    store: SqlReviewStore,
) -> None:
    await store.record_decisions([stored("a", action=Action.APPROVE)])

    with pytest.raises(NotRejected):
        await store.apply_feedback(appeal("a"))
    with pytest.raises(NotRejected):  # not a duplicate: the refused one was not recorded
        await store.apply_feedback(appeal("a"))


async def test_an_appeal_upheld_is_an_overturned_label(store: SqlReviewStore) -> None:
    await store.record_decisions([stored("a", action=Action.REJECT)])
    await store.apply_feedback(appeal("a"))

    await store.decide(
        moderator("a", Action.APPROVE, ModeratorReason.OK), draft("a"), now=T0 + timedelta(hours=1)
    )

    [label] = await store.labels()
    assert (label.label, label.auto_action, label.final_action, label.overturned) == (
        TrainingLabel.OK,
        Action.REJECT,
        Action.APPROVE,
        True,
    )


async def test_claiming_by_reports_puts_reliable_reporters_first(store: SqlReviewStore) -> None:
    await store.record_decisions(
        [
            stored("x", action=Action.APPROVE),
            stored("y", action=Action.APPROVE),
            stored("z", action=Action.APPROVE),
            stored("w", action=Action.APPROVE, spam=0.99),
        ]
    )
    # rita's reports have been upheld twice, sam's dismissed twice
    for cid, reporter, action in (
        ("x", "rita", Action.REJECT),
        ("y", "rita", Action.REJECT),
        ("z", "sam", Action.APPROVE),
        ("w", "sam", Action.APPROVE),
    ):
        await store.apply_feedback(report(cid, reporter))
        reason = ModeratorReason.SPAM if action is Action.REJECT else ModeratorReason.OK
        await store.decide(moderator(cid, action, reason), draft(cid), now=T0)
    await store.record_decisions(
        [stored(f"n{i}", action=Action.APPROVE, spam=0.2 + i / 10) for i in range(3)]
    )
    await store.apply_feedback(report("n0", "rita", minutes=10))
    await store.apply_feedback(report("n1", "sam", minutes=5))
    await store.apply_feedback(report("n2", "nobody-yet", minutes=7))

    claimed = await store.claim(
        "herald", "bob", 3, order=QueueOrder.REPORTS, lease=LEASE, now=T0 + timedelta(hours=1)
    )

    assert [i.comment_id for i in claimed] == ["n0", "n2", "n1"]
    weights = [i.report_weight for i in claimed]
    assert weights == sorted(weights, reverse=True)
    assert weights[0] == pytest.approx(3 / 4)  # (2 upheld + 1) / (2 + 2)


async def test_labels_keep_every_decision_and_give_the_latest_per_comment(
    store: SqlReviewStore,
) -> None:
    await store.record_decisions(
        [stored("a", action=Action.APPROVE), stored("b", site="other"), stored("c")]
    )
    await store.decide(
        ModeratorDecision("other", "b", Action.REJECT, ModeratorReason.OFF_TOPIC, None, "m"),
        draft("b"),
        now=T0,
    )
    await store.decide(moderator("c", Action.APPROVE, ModeratorReason.OK), draft("c"), now=T0)
    await store.apply_feedback(report("a", "rita", minutes=2))
    await store.decide(
        moderator("a", Action.REJECT, ModeratorReason.SPAM), draft("a", 1), now=T0 + timedelta(3)
    )
    await store.apply_feedback(appeal("a", minutes=60 * 24 * 4))
    await store.decide(
        moderator("a", Action.APPROVE, ModeratorReason.OK), draft("a", 2), now=T0 + timedelta(5)
    )

    every = await store.labels(latest_only=False)
    latest = await store.labels()
    herald = await store.labels(site_id="herald")

    assert [(e.comment_id, e.label) for e in every] == [
        ("b", TrainingLabel.OTHER),
        ("c", TrainingLabel.OK),
        ("a", TrainingLabel.SPAM),
        ("a", TrainingLabel.OK),
    ]
    assert [(e.comment_id, e.label) for e in latest] == [
        ("b", TrainingLabel.OTHER),
        ("c", TrainingLabel.OK),
        ("a", TrainingLabel.OK),
    ]
    assert {e.comment_id for e in herald} == {"a", "c"}


async def test_recent_texts_are_a_sites_latest_traffic(store: SqlReviewStore) -> None:
    await store.record_decisions(
        [
            stored("old", at=T0 - timedelta(days=40)),
            stored("new", at=T0, action=Action.APPROVE),
            stored("newer", at=T0 + timedelta(seconds=1), action=Action.REJECT),
            stored("elsewhere", site="other"),
        ]
    )

    texts = await store.recent_texts("herald", since=T0 - timedelta(days=30), limit=10)

    assert texts == ["text of newer", "text of new"]
