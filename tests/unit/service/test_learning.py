"""The learning loop's pure rules: labels, reliability, promotion, threshold suggestions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.domain.feedback import (
    LabelledExample,
    ReasonSource,
    TrainingLabel,
    overturned,
    reason_source,
    reliability,
    training_label,
)
from service.domain.learning import HeadComparison, PromotionRule, judge, suggest_thresholds
from service.domain.model import Action, Label, ModeratorReason, Scores
from service.usecases.retrain import (
    as_site_labels,
    head_examples,
    labels_digest,
    split_recent,
    trainable,
)

T0 = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.mark.parametrize(
    ("action", "reason", "label"),
    [
        (Action.APPROVE, ModeratorReason.OK, TrainingLabel.OK),
        (Action.APPROVE, ModeratorReason.SPAM, TrainingLabel.OK),  # approved is fine, whatever
        (Action.REJECT, ModeratorReason.SPAM, TrainingLabel.SPAM),
        (Action.REJECT, ModeratorReason.ABUSE, TrainingLabel.ABUSE),
        (Action.REJECT, ModeratorReason.OFF_TOPIC, TrainingLabel.OTHER),
        (Action.REJECT, ModeratorReason.PERSONAL_INFO, TrainingLabel.OTHER),
    ],
)
def test_a_decision_teaches_the_label_its_reason_names(
    action: Action, reason: ModeratorReason, label: TrainingLabel
) -> None:
    assert training_label(action, reason) is label


def test_only_a_reversed_final_decision_is_overturned() -> None:
    assert overturned(Action.APPROVE, Action.REJECT)
    assert overturned(Action.REJECT, Action.APPROVE)
    assert not overturned(Action.REVIEW, Action.REJECT)
    assert not overturned(Action.REJECT, Action.REJECT)


def test_reliability_starts_at_one_half_and_follows_the_record() -> None:
    assert reliability(0, 0) == 0.5
    assert reliability(9, 1) == pytest.approx(10 / 12)
    assert reliability(0, 8) == pytest.approx(0.1)
    assert reliability(1, 0) < reliability(10, 0) < 1.0


def head(
    label: Label = Label.SPAM,
    *,
    test: tuple[float, float] = (0.95, 0.95),
    brier: tuple[float, float] = (0.05, 0.05),
    held: tuple[float | None, float | None] = (0.9, 0.9),
) -> HeadComparison:
    return HeadComparison(label, *test, *brier, *held, 10, 10)


def test_a_candidate_within_every_margin_is_promoted() -> None:
    rule = PromotionRule()
    verdict = judge(
        [
            head(test=(0.95, 0.946), brier=(0.05, 0.059), held=(0.9, 0.885)),
            head(Label.ABUSE, held=(None, None)),
        ],
        rule,
    )
    assert verdict.promote
    assert verdict.reasons == ()


@pytest.mark.parametrize(
    ("changed", "needle"),
    [
        (head(test=(0.95, 0.94)), "test-split ROC-AUC"),
        (head(brier=(0.05, 0.07)), "Brier"),
        (head(held=(0.9, 0.85)), "held-back ROC-AUC"),
    ],
)
def test_a_candidate_worse_on_either_slice_is_refused_saying_where(
    changed: HeadComparison, needle: str
) -> None:
    verdict = judge([changed, head(Label.ABUSE)], PromotionRule())
    assert not verdict.promote
    [reason] = verdict.reasons
    assert needle in reason
    assert reason.startswith("spam:")


def test_nothing_judged_on_recent_labels_is_refused() -> None:
    verdict = judge([head(held=(None, None)), head(Label.ABUSE, held=(0.9, None))], PromotionRule())
    assert not verdict.promote
    assert "no label could be judged" in verdict.reasons[0]


def example(
    i: int,
    label: TrainingLabel,
    text: str | None = None,
    source: ReasonSource = ReasonSource.MODERATOR,
) -> LabelledExample:
    return LabelledExample(
        "herald",
        f"c{i}",
        text or f"text {i}",
        label,
        Action.REVIEW,
        Action.APPROVE if label is TrainingLabel.OK else Action.REJECT,
        False,
        "moderator:m",
        T0 + timedelta(minutes=i),
        source,
    )


@pytest.mark.parametrize(
    ("action", "reason_given", "source"),
    [
        (Action.REJECT, True, ReasonSource.MODERATOR),
        (Action.REJECT, False, ReasonSource.GUESSED),  # the API's default `other`, not a reason
        (Action.APPROVE, True, ReasonSource.MODERATOR),
        (Action.APPROVE, False, ReasonSource.MODERATOR),  # approving says ok by itself
    ],
)
def test_a_reason_is_the_moderators_only_if_given_or_implied_by_an_approval(
    action: Action, reason_given: bool, source: ReasonSource
) -> None:
    assert reason_source(action, reason_given=reason_given) is source


def test_retraining_learns_only_from_reasons_a_moderator_gave() -> None:
    labels = [
        example(0, TrainingLabel.SPAM, "buy now"),
        example(1, TrainingLabel.ABUSE, "guessed abuse", ReasonSource.GUESSED),
        example(2, TrainingLabel.OK, "nice piece"),
        example(3, TrainingLabel.OTHER, "off topic"),
        example(4, TrainingLabel.SPAM, "guessed spam", ReasonSource.GUESSED),
        example(5, TrainingLabel.ABUSE, "you fool"),
    ]

    assert [e.text for e in trainable(labels)] == ["buy now", "nice piece", "you fool"]


def test_the_newest_labels_are_held_back() -> None:
    labels = [example(i, TrainingLabel.OK) for i in (5, 1, 4, 2, 3, 0, 9, 8, 7, 6)]

    older, newest = split_recent(labels, 0.2)

    assert [e.comment_id for e in older] == [f"c{i}" for i in range(8)]
    assert [e.comment_id for e in newest] == ["c8", "c9"]


def test_each_head_learns_its_positives_against_the_approved_comments() -> None:
    labels = [
        example(0, TrainingLabel.SPAM, "buy now"),
        example(1, TrainingLabel.ABUSE, "you fool"),
        example(2, TrainingLabel.OK, "nice piece"),
        example(3, TrainingLabel.OTHER, "off topic"),
    ]

    assert head_examples(labels, Label.SPAM) == [("buy now", 1), ("nice piece", 0)]
    assert head_examples(labels, Label.ABUSE) == [("you fool", 1), ("nice piece", 0)]
    rows = as_site_labels(labels)
    assert [(e.site_id, e.text, e.label) for e in rows] == [
        (e.site_id, e.text, e.label.value) for e in labels
    ]
    assert [e.label for e in rows] == ["spam", "abuse", "ok", "other"]


def test_the_label_digest_changes_with_any_label() -> None:
    labels = [example(0, TrainingLabel.SPAM), example(1, TrainingLabel.OK)]
    flipped = [example(0, TrainingLabel.OK), example(1, TrainingLabel.OK)]

    assert labels_digest(labels) == labels_digest(list(reversed(labels)))
    assert labels_digest(labels) != labels_digest(flipped)


def s(spam: float, abuse: float = 0.0) -> Scores:
    return Scores(spam=spam, abuse=abuse)


def test_thresholds_meet_the_targets_on_the_labelled_comments() -> None:
    good = [s(i / 1000, i / 1000) for i in range(1000)]  # scores 0.000 .. 0.999
    spam = [s(0.5 + i / 200) for i in range(100)]  # 0.50 .. 0.995
    abuse = [s(0.0, 0.6 + i / 500) for i in range(100)]

    got = suggest_thresholds(
        good,
        {Label.SPAM: spam, Label.ABUSE: abuse},
        traffic=[s(0.1), s(0.55), s(0.999), s(0.2, 0.7)],
        max_false_reject=0.01,
        max_miss=0.05,
    )

    by = {t.label: t for t in got.labels}
    # half the false-reject budget each: at most 5 of the 1000 good comments at or above
    assert sum(1 for g in good if g.spam >= by[Label.SPAM].reject_at) <= 5
    assert by[Label.SPAM].good_rejected == 0.005  # the budget is used, not wasted
    assert by[Label.SPAM].reject_at == pytest.approx(0.9941)
    # at most 5 of the 100 spam comments below the review threshold
    assert sum(1 for b in spam if b.spam < by[Label.SPAM].review_at) <= 5
    assert by[Label.SPAM].bad_missed <= 0.05
    assert by[Label.SPAM].review_at == pytest.approx(0.525, abs=1e-3)
    assert by[Label.ABUSE].review_at == pytest.approx(0.61, abs=1e-3)
    # traffic: 0.1 approved, 0.55 queued, 0.999 rejected, abuse 0.7 queued
    assert got.human_share == pytest.approx(0.5)
    assert (got.good, got.bad, got.traffic) == (1000, {Label.SPAM: 100, Label.ABUSE: 100}, 4)


def test_a_zero_false_reject_target_rejects_nothing_a_good_comment_scored() -> None:
    good = [s(0.2), s(0.97)]
    got = suggest_thresholds(
        good, {Label.SPAM: [s(0.99)]}, traffic=[], max_false_reject=0.0, max_miss=0.0
    )

    spam = got.labels[0]
    assert spam.reject_at > 0.97
    assert spam.good_rejected == 0.0
    assert spam.review_at <= spam.reject_at
    assert got.human_share is None


def test_a_good_comment_scored_one_still_gives_a_threshold_a_policy_accepts() -> None:
    good = [s(1.0)] + [s(0.1)] * 9

    got = suggest_thresholds(good, {}, traffic=[], max_false_reject=0.2, max_miss=0.05)

    spam = got.labels[0]
    assert spam.reject_at <= 1.0
    assert spam.good_rejected == pytest.approx(0.1)  # 1 of 10, within 0.2 / 2 per label
