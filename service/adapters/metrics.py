"""Prometheus metrics, on a registry of their own (injected, so tests read exactly theirs)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector

from service.domain.review import QueueStats
from service.domain.spot_check import SpotCheckEstimate
from service.usecases.ports import BatchCounts

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_BATCH_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class PrometheusMetrics:
    """Implements the `PipelineMetrics`, `ReviewMetrics` and `PerspectiveMetrics` ports; label
    sets are bounded
    (actions, reason codes, partitions, sites: never comment or author ids)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)
        self.consumed = Counter(
            "moderation_comments_consumed", "Comment records consumed and committed.", registry=r
        )
        self.batches = Counter(
            "moderation_batches", "Batches committed in one Kafka transaction each.", registry=r
        )
        self.decisions = Counter(
            "moderation_decisions",
            "Decisions made, by action and by who decided (auto: committed with its batch; "
            "moderator: committed with its outbox row).",
            ["action", "decided_by"],
            registry=r,
        )
        self.dead_letters = Counter(
            "moderation_dead_letters",
            "Input records sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.scoring_failures = Counter(
            "moderation_scoring_failures",
            "Valid comments the model could not score (decided by the site's failure policy).",
            registry=r,
        )
        self.processing = Histogram(
            "moderation_scoring_duration_seconds",
            "Time to decode, score and decide one batch (off the event loop).",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "moderation_decision_latency_seconds",
            "From a comment's created_at to its decision being committed.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "moderation_consumer_lag_records",
            "Records in the input topic not yet consumed, per assigned partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.aborts = Counter(
            "moderation_transaction_aborts", "Kafka transactions aborted.", registry=r
        )
        self.retries = Counter(
            "moderation_retries",
            "Retries after a transient failure (Kafka or the store), by component.",
            ["component"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "moderation_review_queue_depth",
            "Comments waiting for a moderator, per site.",
            ["site_id"],
            registry=r,
        )
        self.queue_oldest = Gauge(
            "moderation_review_queue_oldest_age_seconds",
            "Age of the oldest comment waiting for a moderator, per site.",
            ["site_id"],
            registry=r,
        )
        self.spot_check_error_rate = Gauge(
            "moderation_spot_check_error_rate",
            "Share of automatic decisions spot checks found wrong, per site: kind false_approve "
            "(approved, a moderator would reject) or false_reject; bound estimate, or the 95% "
            "Wilson interval's low and high. Absent before a site's first verdict.",
            ["site_id", "kind", "bound"],
            registry=r,
        )
        self.spot_check_verdicts = Gauge(
            "moderation_spot_check_verdicts",
            "Moderators' verdicts on spot checks, per site and kind (the estimate's sample size).",
            ["site_id", "kind"],
            registry=r,
        )
        self.moderator_actions = Counter(
            "moderation_moderator_actions",
            "Moderator actions: claim, release, approve, reject (per item).",
            ["action"],
            registry=r,
        )
        self.outbox_backlog = Gauge(
            "moderation_outbox_backlog_records",
            "Moderator decisions written but not yet published to Kafka.",
            registry=r,
        )
        self.model_info = Gauge(
            "moderation_model_info", "The loaded model (value 1).", ["version"], registry=r
        )
        self.policy_info = Gauge(
            "moderation_policy_info", "The policy in force (value 1).", ["version"], registry=r
        )
        self.perspective_requests = Counter(
            "moderation_perspective_requests",
            "Requests to the Perspective-compatible API, by method (analyze, suggestscore) and "
            "outcome (ok, or Perspective's error status in lower case).",
            ["method", "outcome"],
            registry=r,
        )
        self.perspective_duration = Histogram(
            "moderation_perspective_request_duration_seconds",
            "Time to answer a Perspective-compatible request, by method.",
            ["method"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self._sites: set[str] = set()
        for action in ("approve", "reject", "review"):
            self.decisions.labels(action, "auto")
        for action in ("approve", "reject"):
            self.decisions.labels(action, "moderator")
        for component in ("pipeline", "outbox", "feedback"):
            self.retries.labels(component)

    # PerspectiveMetrics
    def perspective_request(self, method: str, outcome: str, seconds: float) -> None:
        self.perspective_requests.labels(method, outcome).inc()
        self.perspective_duration.labels(method).observe(seconds)

    def versions(self, model: str, policy: str) -> None:
        self.model_info.clear()
        self.model_info.labels(model).set(1)
        self.policy_info.clear()
        self.policy_info.labels(policy).set(1)

    # PipelineMetrics
    def batch_committed(
        self, counts: BatchCounts, processing_seconds: float, latencies: Sequence[float]
    ) -> None:
        self.batches.inc()
        self.consumed.inc(sum(counts.actions.values()) + sum(counts.dead_letters.values()))
        for action, count in counts.actions.items():
            self.decisions.labels(action, "auto").inc(count)
        for reason, count in counts.dead_letters.items():
            self.dead_letters.labels(reason).inc(count)
        self.scoring_failures.inc(counts.scoring_failures)
        self.processing.observe(processing_seconds)
        for seconds in latencies:
            self.latency.observe(max(0.0, seconds))

    def consumer_lag(self, topic: str, partition: int, records: int) -> None:
        self.lag.labels(topic, str(partition)).set(max(0, records))

    def partitions_revoked(self, topic: str, partitions: Sequence[int]) -> None:
        for partition in partitions:
            try:
                self.lag.remove(topic, str(partition))
            except KeyError:
                continue

    def dead_lettered(self, reason: str) -> None:
        self.consumed.inc()
        self.dead_letters.labels(reason).inc()

    def transaction_aborted(self) -> None:
        self.aborts.inc()

    def retried(self, component: str) -> None:
        self.retries.labels(component).inc()

    # ReviewMetrics
    def moderator_action(self, action: str, count: int = 1) -> None:
        self.moderator_actions.labels(action).inc(count)
        if action in ("approve", "reject"):
            self.decisions.labels(action, "moderator").inc(count)

    # the store's view, refreshed periodically
    def spot_checks(self, estimates: Sequence[SpotCheckEstimate]) -> None:
        for e in estimates:
            self.spot_check_verdicts.labels(e.site_id, e.kind).set(e.checked)
            if e.rate is None or e.interval is None:
                continue
            for bound, value in (
                ("estimate", e.rate),
                ("low", e.interval.low),
                ("high", e.interval.high),
            ):
                self.spot_check_error_rate.labels(e.site_id, e.kind, bound).set(value)

    def queue(self, stats: Sequence[QueueStats], now_seconds: float, backlog: int) -> None:
        seen = set()
        for site in stats:
            seen.add(site.site_id)
            self.queue_depth.labels(site.site_id).set(site.depth)
            oldest = site.oldest_queued_at.timestamp() if site.oldest_queued_at else now_seconds
            self.queue_oldest.labels(site.site_id).set(max(0.0, now_seconds - oldest))
        for gone in self._sites - seen:  # an emptied queue reads 0, not its last value
            self.queue_depth.labels(gone).set(0)
            self.queue_oldest.labels(gone).set(0)
        self._sites |= seen
        self.outbox_backlog.set(backlog)
