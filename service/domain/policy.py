"""The moderation policy and the one function that applies it."""

from __future__ import annotations

from dataclasses import dataclass

from service.domain.errors import InvalidPolicy
from service.domain.model import Action, Comment, Decision, Label, Reason, ReasonCode, Scores

_REJECT_CODE = {
    Label.SPAM: ReasonCode.SPAM_ABOVE_REJECT,
    Label.ABUSE: ReasonCode.ABUSE_ABOVE_REJECT,
}
_REVIEW_CODE = {Label.SPAM: ReasonCode.SPAM_UNCERTAIN, Label.ABUSE: ReasonCode.ABUSE_UNCERTAIN}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Below `approve_below` a label approves; at or above `reject_at` it rejects;
    in between it asks a human."""

    approve_below: float
    reject_at: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.approve_below <= self.reject_at <= 1.0:
            raise InvalidPolicy(
                f"thresholds need 0 <= approve_below <= reject_at <= 1, got "
                f"approve_below={self.approve_below}, reject_at={self.reject_at}"
            )


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    spam: Thresholds
    abuse: Thresholds

    def thresholds(self, label: Label) -> Thresholds:
        return self.spam if label is Label.SPAM else self.abuse


def decide(comment: Comment, scores: Scores, policy: Policy, model_version: str) -> Decision:
    """Turn scores into an action with its reasons. Any label that rejects rejects the
    comment; otherwise any uncertain label sends it to review; otherwise it is approved."""
    rejects: list[Reason] = []
    reviews: list[Reason] = []
    for label in Label:
        score = scores.of(label)
        limits = policy.thresholds(label)
        if score >= limits.reject_at:
            rejects.append(
                Reason(
                    _REJECT_CODE[label],
                    f"{label} score {score:.3f} >= reject threshold {limits.reject_at:.3f}",
                )
            )
        elif score >= limits.approve_below:
            reviews.append(
                Reason(
                    _REVIEW_CODE[label],
                    f"{label} score {score:.3f} between approve threshold "
                    f"{limits.approve_below:.3f} and reject threshold {limits.reject_at:.3f}",
                )
            )
    if rejects:
        action, reasons = Action.REJECT, tuple(rejects + reviews)
    elif reviews:
        action, reasons = Action.REVIEW, tuple(reviews)
    else:
        action = Action.APPROVE
        reasons = (
            Reason(
                ReasonCode.BELOW_THRESHOLDS,
                f"spam {scores.spam:.3f} < {policy.spam.approve_below:.3f} and "
                f"abuse {scores.abuse:.3f} < {policy.abuse.approve_below:.3f}",
            ),
        )
    return Decision(
        comment_id=comment.id,
        site_id=comment.site_id,
        action=action,
        scores=scores,
        reasons=reasons,
        model_version=model_version,
        policy_version=policy.version,
    )
