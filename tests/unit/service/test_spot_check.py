"""Spot checks' pure pieces: the stable draw, the sampling rule, what a verdict publishes,
the Wilson interval, and the policy keys."""

from __future__ import annotations

import hashlib
import math
import tomllib

import pytest

from service.adapters.metrics import PrometheusMetrics
from service.adapters.policy_file import PolicyFileError, compile_policy
from service.domain.errors import InvalidPolicy
from service.domain.model import Action, Decision, ReasonCode, Scores
from service.domain.policy import SitePolicy, Thresholds
from service.domain.spot_check import (
    SpotCheckCounts,
    SpotCheckRates,
    draw,
    estimate,
    spot_check,
    verdict_publishes,
    wilson_interval,
)
from service.entrypoints.cli.status import format_status
from service.entrypoints.http.present import spot_check_json

BASE = SitePolicy(Thresholds(0.5, 0.9), Thresholds(0.5, 0.9))


def decision(action: Action, comment_id: str = "c-1", site_id: str = "herald") -> Decision:
    return Decision(comment_id, site_id, action, Scores(0.1, 0.1), (), "m-1", "p-1")


def test_the_draw_is_blake2b_of_site_and_comment_as_a_fraction_of_two_to_the_64() -> None:
    digest = hashlib.blake2b(b"herald\x1fc-1", digest_size=8, person=b"spot-check").digest()

    assert draw("herald", "c-1") == int.from_bytes(digest, "big") / 2**64
    assert draw("herald", "c-1") == draw("herald", "c-1")  # every instance, every replay
    assert draw("herald", "c-1") != draw("gazette", "c-1")
    assert draw("herald", "c-1") != draw("herald", "c-2")


def test_draws_are_uniform_enough_for_the_rates_to_hold() -> None:
    values = [draw("herald", f"c-{i}") for i in range(20_000)]

    assert all(0.0 <= v < 1.0 for v in values)
    for edge in (0.1, 0.5, 0.9):  # share below each edge within 4 standard errors
        share = sum(v < edge for v in values) / len(values)
        assert abs(share - edge) < 4 * math.sqrt(edge * (1 - edge) / len(values))


def test_an_approval_is_sampled_exactly_when_its_draw_is_below_the_rate() -> None:
    rates = SpotCheckRates(approve_rate=0.3, reject_rate=0.0)
    for i in range(200):
        approved = decision(Action.APPROVE, f"c-{i}")
        reason = spot_check(approved, rates)
        assert (reason is not None) == (draw("herald", f"c-{i}") < 0.3)
        if reason is not None:
            assert reason.code is ReasonCode.SPOT_CHECK
            assert "approve" in reason.detail
        assert spot_check(decision(Action.REJECT, f"c-{i}"), rates) is None  # rate 0: off
        assert spot_check(decision(Action.REVIEW, f"c-{i}"), SpotCheckRates(1, 1)) is None


def test_rate_one_samples_every_rejection_and_zero_none() -> None:
    assert spot_check(decision(Action.REJECT), SpotCheckRates(reject_rate=1.0)) is not None
    assert spot_check(decision(Action.REJECT), SpotCheckRates()) is None


@pytest.mark.parametrize("rates", [(-0.1, 0.0), (0.0, 1.5)])
def test_rates_outside_zero_to_one_are_refused(rates: tuple[float, float]) -> None:
    with pytest.raises(InvalidPolicy, match="spot_check"):
        SpotCheckRates(*rates)


SPOT = ["below_thresholds", "spot_check"]


@pytest.mark.parametrize(
    ("auto", "codes", "verdict", "publishes"),
    [
        (Action.APPROVE, SPOT, Action.APPROVE, False),  # confirmed: the site knows it already
        (Action.APPROVE, SPOT, Action.REJECT, True),  # overturned: the site must act
        (Action.REJECT, SPOT, Action.APPROVE, True),
        (Action.REJECT, SPOT, Action.REJECT, False),
        (Action.APPROVE, [*SPOT, "reported"], Action.APPROVE, True),  # a reader waits
        (Action.REJECT, [*SPOT, "appealed"], Action.REJECT, True),  # the author waits
        (Action.APPROVE, ["below_thresholds", "reported"], Action.APPROVE, True),  # as before
        (Action.REVIEW, ["spam_uncertain"], Action.APPROVE, True),
    ],
)
def test_only_a_spot_check_that_confirms_the_machine_publishes_nothing(
    auto: Action, codes: list[str], verdict: Action, publishes: bool
) -> None:
    assert verdict_publishes(auto, codes, verdict) is publishes


def reference_wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """Written from the textbook formula: (p + z²/2n ± z√(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p = k / n
    root = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (
        (p + z * z / (2 * n) - root) / (1 + z * z / n),
        (p + z * z / (2 * n) + root) / (1 + z * z / n),
    )


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (7, 250)])
def test_the_wilson_interval_matches_the_formula_and_stays_within_zero_and_one(
    k: int, n: int
) -> None:
    interval = wilson_interval(k, n)
    assert interval is not None
    low, high = reference_wilson(k, n, 1.959963984540054)

    assert interval.low == pytest.approx(max(0.0, low), abs=1e-12)
    assert interval.high == pytest.approx(min(1.0, high), abs=1e-12)
    assert 0.0 <= interval.low <= k / n <= interval.high <= 1.0


def test_known_wilson_values() -> None:
    # 1 of 10: 0.0179 to 0.4042 (Newcombe 1998, table I)
    interval = wilson_interval(1, 10)
    assert interval is not None
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.0179, 0.4042)
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


def test_an_estimate_before_any_verdict_has_no_rate() -> None:
    empty = estimate(SpotCheckCounts("herald", Action.APPROVE, 0, 0, waiting=3))
    assert (empty.rate, empty.interval, empty.waiting, empty.kind) == (
        None,
        None,
        3,
        "false_approve",
    )
    some = estimate(SpotCheckCounts("herald", Action.REJECT, 4, 1))
    assert (some.rate, some.kind) == (0.25, "false_reject")


def compile_text(text: str) -> SitePolicy:
    return compile_policy(tomllib.loads(text), str.casefold, BASE, source="test").default


def test_the_policy_file_sets_rates_per_site_over_the_defaults() -> None:
    text = (
        'version = "v"\n[defaults.spot_check]\napprove_rate = 0.1\n'
        "[sites.herald.spot_check]\nreject_rate = 0.5\n"
    )
    policy = compile_policy(tomllib.loads(text), str.casefold, BASE, source="test")

    assert policy.default.spot_check == SpotCheckRates(0.1, 0.0)
    assert policy.for_site("herald").spot_check == SpotCheckRates(0.1, 0.5)
    assert compile_text('version = "v"').spot_check == SpotCheckRates()  # off by default


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("approve_rate = 1.5", "defaults.spot_check.approve_rate: must be a number from 0 to 1"),
        ("reject_rate = -0.2", "defaults.spot_check.reject_rate: must be a number from 0 to 1"),
        ('approve_rate = "10%"', "defaults.spot_check.approve_rate: must be a number from 0 to 1"),
        ("approve_rate = true", "defaults.spot_check.approve_rate: must be a number from 0 to 1"),
        ("review_rate = 0.1", "defaults.spot_check.review_rate: unknown key"),
    ],
)
def test_bad_spot_check_keys_are_named(section: str, problem: str) -> None:
    with pytest.raises(PolicyFileError) as caught:
        compile_text(f'version = "v"\n[defaults.spot_check]\n{section}\n')

    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_status_shows_each_sites_rate_with_its_interval_and_counts() -> None:
    checked = spot_check_json(estimate(SpotCheckCounts("herald", Action.APPROVE, 30, 7, 5)))
    unchecked = spot_check_json(estimate(SpotCheckCounts("herald", Action.REJECT, 0, 0, 2)))
    report = {
        "checked_at": "2026-11-27T12:00:00Z",
        "kafka": {"bootstrap": "b", "group_id": "g", "topic": "t", "error": "down"},
        "store": {
            "dialect": "sqlite",
            "schema_version": 8,
            "outbox_backlog": 0,
            "review_queue": [],
            "spot_checks": [checked, unchecked],
        },
        "model": {"path": "m", "version": "v"},
        "policy_version": "p",
        "event_schemas": [],
    }

    text = format_status(report)

    interval = wilson_interval(7, 30)
    assert interval is not None
    assert checked["low"] == interval.low
    assert (
        f"approvals a moderator would reject: 23.3% (95% CI {interval.low:.1%} to "
        f"{interval.high:.1%})  7 of 30 checked, 5 waiting"
    ) in text
    assert "rejections a moderator would approve: no verdict yet  0 of 0 checked, 2 waiting" in (
        text
    )


def test_the_gauges_give_each_sites_estimate_and_bounds_once_there_is_a_verdict() -> None:
    metrics = PrometheusMetrics()
    metrics.spot_checks(
        [
            estimate(SpotCheckCounts("herald", Action.APPROVE, 30, 7)),
            estimate(SpotCheckCounts("herald", Action.REJECT, 0, 0, waiting=4)),
        ]
    )
    interval = wilson_interval(7, 30)
    assert interval is not None

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    rate = "moderation_spot_check_error_rate"
    herald = {"site_id": "herald", "kind": "false_approve"}
    assert value(rate, **herald, bound="estimate") == pytest.approx(7 / 30)
    assert value(rate, **herald, bound="low") == interval.low
    assert value(rate, **herald, bound="high") == interval.high
    assert value("moderation_spot_check_verdicts", **herald) == 30
    assert value(rate, site_id="herald", kind="false_reject", bound="estimate") is None
    assert value("moderation_spot_check_verdicts", site_id="herald", kind="false_reject") == 0
