from __future__ import annotations

import pytest

from service.domain.errors import InvalidPolicy
from service.domain.model import Action, Comment, ReasonCode, Scores
from service.domain.policy import Policy, Thresholds, decide

POLICY = Policy(version="p-7", spam=Thresholds(0.4, 0.9), abuse=Thresholds(0.5, 0.8))
COMMENT = Comment(id="c1", site_id="s1", text="hello")


@pytest.mark.parametrize(
    ("spam", "abuse", "action", "codes"),
    [
        (0.0, 0.0, Action.APPROVE, [ReasonCode.BELOW_THRESHOLDS]),
        (0.399, 0.499, Action.APPROVE, [ReasonCode.BELOW_THRESHOLDS]),
        (0.4, 0.0, Action.REVIEW, [ReasonCode.SPAM_UNCERTAIN]),
        (0.0, 0.5, Action.REVIEW, [ReasonCode.ABUSE_UNCERTAIN]),
        (0.6, 0.6, Action.REVIEW, [ReasonCode.SPAM_UNCERTAIN, ReasonCode.ABUSE_UNCERTAIN]),
        (0.9, 0.0, Action.REJECT, [ReasonCode.SPAM_ABOVE_REJECT]),
        (0.0, 0.8, Action.REJECT, [ReasonCode.ABUSE_ABOVE_REJECT]),
        (1.0, 1.0, Action.REJECT, [ReasonCode.SPAM_ABOVE_REJECT, ReasonCode.ABUSE_ABOVE_REJECT]),
        # a reject on one label wins, and the other label's doubt is still explained
        (0.95, 0.6, Action.REJECT, [ReasonCode.SPAM_ABOVE_REJECT, ReasonCode.ABUSE_UNCERTAIN]),
    ],
)
def test_decide_maps_scores_to_action_and_reasons(
    spam: float, abuse: float, action: Action, codes: list[ReasonCode]
) -> None:
    decision = decide(COMMENT, Scores(spam=spam, abuse=abuse), POLICY, "m-3")

    assert decision.action is action
    assert [r.code for r in decision.reasons] == codes
    assert decision.final is (action is not Action.REVIEW)


def test_decision_carries_identity_versions_and_scores() -> None:
    scores = Scores(spam=0.1, abuse=0.2)
    decision = decide(COMMENT, scores, POLICY, "m-3")

    assert (decision.comment_id, decision.site_id) == ("c1", "s1")
    assert (decision.model_version, decision.policy_version) == ("m-3", "p-7")
    assert decision.scores == scores
    assert decision.decided_by == "auto"


def test_reason_detail_names_the_threshold_crossed() -> None:
    decision = decide(COMMENT, Scores(spam=0.0, abuse=0.85), POLICY, "m")

    assert decision.reasons[0].detail == "abuse score 0.850 >= reject threshold 0.800"


@pytest.mark.parametrize(("approve", "reject"), [(0.9, 0.5), (-0.1, 0.5), (0.5, 1.5)])
def test_thresholds_refuse_an_impossible_order(approve: float, reject: float) -> None:
    with pytest.raises(InvalidPolicy, match="approve_below <= reject_at"):
        Thresholds(approve, reject)


def test_equal_thresholds_leave_no_review_band() -> None:
    policy = Policy("p", Thresholds(0.5, 0.5), Thresholds(0.5, 0.5))

    assert decide(COMMENT, Scores(0.49, 0.0), policy, "m").action is Action.APPROVE
    assert decide(COMMENT, Scores(0.5, 0.0), policy, "m").action is Action.REJECT
