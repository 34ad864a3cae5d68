"""Per-key token buckets."""

from __future__ import annotations

import pytest

from service.usecases.rate_limit import RateLimiter


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_gets_its_burst_then_its_rate() -> None:
    ticks = Ticks()
    limiter = RateLimiter(rate=2.0, burst=3.0, clock=ticks)

    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)  # one token comes every half second
    ticks.now = 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0.0


def test_keys_do_not_share_a_bucket() -> None:
    limiter = RateLimiter(rate=1.0, burst=1.0, clock=Ticks())

    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0.0
    assert limiter.take("b") == 0.0


def test_an_idle_key_refills_up_to_its_burst_only() -> None:
    ticks = Ticks()
    limiter = RateLimiter(rate=10.0, burst=2.0, clock=ticks)
    limiter.take("a")
    ticks.now = 3600.0

    assert [limiter.take("a") == 0.0 for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.5)])
def test_a_limit_that_allows_nothing_is_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate, burst)
