"""The metric names the service exports, and a small PromQL reader that lists the series names
an expression uses, so dashboards and rules break a test when a metric is renamed."""

from __future__ import annotations

import re
from typing import Final

# Exported by `/metrics` (issue 6): name -> type.
SERVICE_METRICS: Final[dict[str, str]] = {
    "moderation_comments_consumed_total": "counter",
    "moderation_decisions_total": "counter",
    "moderation_dead_letters_total": "counter",
    "moderation_scoring_duration_seconds": "histogram",
    "moderation_decision_latency_seconds": "histogram",
    "moderation_consumer_lag_records": "gauge",
    "moderation_transaction_aborts_total": "counter",
    "moderation_retries_total": "counter",
    "moderation_review_queue_depth": "gauge",
    "moderation_review_queue_oldest_age_seconds": "gauge",
    "moderation_moderator_actions_total": "counter",
    "moderation_outbox_backlog_records": "gauge",
    "moderation_model_info": "gauge",
    "moderation_policy_info": "gauge",
    "moderation_batches_total": "counter",
    "moderation_scoring_failures_total": "counter",
}

# prometheus_client's process collector, and Prometheus's own per-target series.
PROCESS_METRICS: Final = frozenset(
    {"process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"}
)
PROMETHEUS_SERIES: Final = frozenset({"up"})

_HISTOGRAM_SUFFIXES: Final = ("_bucket", "_sum", "_count")


def series_names() -> frozenset[str]:
    """Every series name a query may use against the service's metrics."""
    names: set[str] = set()
    for name, kind in SERVICE_METRICS.items():
        if kind == "histogram":
            names.update(name + suffix for suffix in _HISTOGRAM_SUFFIXES)
        else:
            names.add(name)
    return frozenset(names | PROCESS_METRICS | PROMETHEUS_SERIES)


_KEYWORDS: Final = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
# Grafana's template query `label_values(metric{...}, label)`: the second argument is a label.
_LABEL_VALUES = re.compile(r"label_values\(\s*([^,()]+?)\s*,\s*\w+\s*\)")
_IDENT = re.compile(r"(?<![\w:.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def metric_names_in(expr: str) -> set[str]:
    """Series names in a PromQL expression (or a Grafana `label_values` query): identifiers
    that are not functions, keywords, label names in groupings, or text inside strings,
    matchers and ranges."""
    text = _LABEL_VALUES.sub(r"\1", expr)
    text = _STRING.sub('""', text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names
