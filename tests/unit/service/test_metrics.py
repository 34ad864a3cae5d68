from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from service.adapters.metrics import PrometheusMetrics
from service.domain.review import QueueStats
from service.usecases.ports import BatchCounts


def samples(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: PrometheusMetrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, tuple(sorted(labels.items())))]


def test_a_committed_batch_counts_consumed_decisions_and_dead_letters() -> None:
    m = PrometheusMetrics()
    counts = BatchCounts(
        actions=Counter({"approve": 5, "review": 2}),
        dead_letters=Counter({"invalid_json": 1}),
        scoring_failures=2,
    )

    m.batch_committed(counts, 0.02, [0.05, 0.2, -1.0])
    m.batch_committed(BatchCounts(actions=Counter({"reject": 1}), dead_letters={}), 0.01, [])

    assert value(m, "moderation_comments_consumed_total") == 9
    assert value(m, "moderation_batches_total") == 2
    assert value(m, "moderation_decisions_total", action="approve", decided_by="auto") == 5
    assert value(m, "moderation_decisions_total", action="reject", decided_by="auto") == 1
    assert value(m, "moderation_decisions_total", action="review", decided_by="auto") == 2
    assert value(m, "moderation_dead_letters_total", reason="invalid_json") == 1
    assert value(m, "moderation_decision_latency_seconds_count") == 3
    assert value(m, "moderation_decision_latency_seconds_bucket", le="0.005") == 1  # clock skew: 0
    assert value(m, "moderation_scoring_duration_seconds_count") == 2
    assert value(m, "moderation_scoring_failures_total") == 2


def test_every_decision_series_exists_before_the_first_decision() -> None:
    # so that rate() and alerts see a 0, not an absent series
    m = PrometheusMetrics()

    for action in ("approve", "reject", "review"):
        assert value(m, "moderation_decisions_total", action=action, decided_by="auto") == 0
    assert value(m, "moderation_retries_total", component="outbox") == 0


def test_moderator_actions_count_and_decisions_count_as_moderator() -> None:
    m = PrometheusMetrics()

    m.moderator_action("claim", 10)
    m.moderator_action("reject")
    m.moderator_action("release", 0)

    assert value(m, "moderation_moderator_actions_total", action="claim") == 10
    assert value(m, "moderation_moderator_actions_total", action="reject") == 1
    assert value(m, "moderation_decisions_total", action="reject", decided_by="moderator") == 1


def test_lag_series_of_revoked_partitions_disappear() -> None:
    m = PrometheusMetrics()
    m.consumer_lag("comments", 0, 12)
    m.consumer_lag("comments", 1, -3)  # never negative

    m.partitions_revoked("comments", [0, 7])

    lag = {k: v for k, v in samples(m).items() if k[0] == "moderation_consumer_lag_records"}
    assert lag == {
        ("moderation_consumer_lag_records", (("partition", "1"), ("topic", "comments"))): 0
    }


def test_queue_gauges_follow_the_store_and_an_emptied_site_reads_zero() -> None:
    m = PrometheusMetrics()
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    m.queue(
        [QueueStats("herald", 4, 1, datetime(2026, 11, 27, 11, 0, tzinfo=UTC))],
        now.timestamp(),
        backlog=3,
    )
    assert value(m, "moderation_review_queue_depth", site_id="herald") == 4
    assert value(m, "moderation_review_queue_oldest_age_seconds", site_id="herald") == 3600
    assert value(m, "moderation_outbox_backlog_records") == 3

    m.queue([], now.timestamp(), backlog=0)

    assert value(m, "moderation_review_queue_depth", site_id="herald") == 0
    assert value(m, "moderation_review_queue_oldest_age_seconds", site_id="herald") == 0


def test_version_info_keeps_only_the_current_versions() -> None:
    m = PrometheusMetrics()
    m.versions("model-1", "policy-1")
    m.versions("model-2", "policy-1")

    info = {k: v for k, v in samples(m).items() if k[0] == "moderation_model_info"}
    assert info == {("moderation_model_info", (("version", "model-2"),)): 1}


def test_process_metrics_are_exported() -> None:
    assert ("process_resident_memory_bytes", ()) in samples(PrometheusMetrics())
