"""Spot checks: a random share of automatic approvals and rejections goes to a moderator too,
while the automatic decision stands. Their verdicts measure how often the machine is wrong.

The draw is not random at run time: it is a stable hash of (site_id, comment_id), uniform in
[0, 1). So a replayed batch, a second instance and a test all make the same choice for the
same comment, and the core stays free of clocks and random generators. A comment is sampled
when its draw is below the site's rate for its automatic action.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from service.domain.errors import InvalidPolicy
from service.domain.model import Action, Decision, Reason, ReasonCode

_PERSON: Final = b"spot-check"  # blake2b's personalisation: this draw, no other hash's
_SCALE: Final = float(1 << 64)
Z_95: Final = 1.959963984540054  # the standard normal's 97.5 % quantile


@dataclass(frozen=True, slots=True)
class SpotCheckRates:
    """The share of a site's automatic approvals (rejections) also sent to a moderator."""

    approve_rate: float = 0.0
    reject_rate: float = 0.0

    def __post_init__(self) -> None:
        for name, value in (("approve_rate", self.approve_rate), ("reject_rate", self.reject_rate)):
            if not 0.0 <= value <= 1.0:
                raise InvalidPolicy(f"spot_check.{name} must be from 0 to 1, got {value}")

    def rate(self, action: Action) -> float:
        if action is Action.APPROVE:
            return self.approve_rate
        if action is Action.REJECT:
            return self.reject_rate
        return 0.0  # a review goes to a moderator anyway


def draw(site_id: str, comment_id: str) -> float:
    """A number in [0, 1), the same for the same comment everywhere and every time."""
    digest = hashlib.blake2b(
        f"{site_id}\x1f{comment_id}".encode("utf-8", "surrogatepass"),
        digest_size=8,
        person=_PERSON,
    ).digest()
    return int.from_bytes(digest, "big") / _SCALE


def spot_check(decision: Decision, rates: SpotCheckRates) -> Reason | None:
    """The `spot_check` reason if this automatic decision is sampled, else None."""
    rate = rates.rate(decision.action)
    if rate <= 0.0 or draw(decision.site_id, decision.comment_id) >= rate:
        return None
    return Reason(
        ReasonCode.SPOT_CHECK,
        f"random spot check of an automatic {decision.action.value} "
        f"({rate:.1%} of them are checked); the automatic decision stands",
    )


def is_spot_check_round(auto_action: Action, codes: Iterable[str]) -> bool:
    """Whether a queued item is a spot check: an automatic approval or rejection queued with
    the `spot_check` reason (a report or appeal round starts without it)."""
    return auto_action is not Action.REVIEW and ReasonCode.SPOT_CHECK.value in set(codes)


_ASKED: Final = frozenset({ReasonCode.REPORTED.value, ReasonCode.APPEALED.value})


def verdict_publishes(auto_action: Action, codes: Iterable[str], action: Action) -> bool:
    """Whether a moderator's verdict publishes a new final decision event.

    Always, except on a spot check that confirms the automatic decision: the site already
    acted on that decision, nobody asked for this check, and the same verdict again tells it
    nothing. A verdict that overturns a spot-checked decision is published, as a re-decision
    after a report or appeal is, so the site can act on it; and a spot check a reader reported
    or an author appealed meanwhile is published either way, as those always are (someone is
    waiting for the answer)."""
    seen = set(codes)
    if not is_spot_check_round(auto_action, seen) or seen & _ASKED:
        return True
    return action is not auto_action


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> Interval | None:
    """The Wilson score interval of a binomial proportion; None without trials."""
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be from 0 to {trials}, got {successes}")
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    # at 0 and n the bound is exactly 0 (1); rounding must not leave the estimate outside
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Interval(low, high)


@dataclass(frozen=True, slots=True)
class SpotCheckCounts:
    """What the store knows of one site's spot checks of one automatic action."""

    site_id: str
    auto_action: Action  # approve or reject
    checked: int  # verdicts given
    overturned: int  # of them, the moderator decided the other way
    waiting: int = 0  # spot checks still in the queue


@dataclass(frozen=True, slots=True)
class SpotCheckEstimate:
    """The estimated share of a site's automatic approvals (rejections) that moderators would
    have decided the other way, with its 95 % Wilson interval (None before any verdict)."""

    site_id: str
    auto_action: Action
    checked: int
    overturned: int
    waiting: int
    rate: float | None
    interval: Interval | None

    @property
    def kind(self) -> str:
        """`false_approve`: approved, a moderator would reject; `false_reject`: the reverse."""
        return "false_approve" if self.auto_action is Action.APPROVE else "false_reject"


def estimate(counts: SpotCheckCounts) -> SpotCheckEstimate:
    n, k = counts.checked, counts.overturned
    return SpotCheckEstimate(
        site_id=counts.site_id,
        auto_action=counts.auto_action,
        checked=n,
        overturned=k,
        waiting=counts.waiting,
        rate=k / n if n else None,
        interval=wilson_interval(k, n),
    )
