from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

from service.adapters.logs import JsonFormatter, OncePerInterval, configure


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("service.x", logging.WARNING, __file__, 1, "kafka %s", ("down",), None)
    rec.__dict__.update(extra)
    return rec


def test_a_log_line_is_one_json_object_with_level_event_and_fields() -> None:
    line = JsonFormatter().format(record(partition=2, offset=41, comment_id="c-1"))

    doc = json.loads(line)
    assert "\n" not in line
    assert doc["level"] == "warning"
    assert doc["event"] == "kafka down"
    assert doc["logger"] == "service.x"
    assert (doc["partition"], doc["offset"], doc["comment_id"]) == (2, 41, "c-1")
    assert "pathname" not in doc
    assert "args" not in doc


def extra_keys_in_source() -> set[str]:
    keys: set[str] = set()
    for path in (Path(__file__).resolve().parents[3] / "service").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.keyword)
                and node.arg == "extra"
                and isinstance(node.value, ast.Dict)
            ):
                keys |= {
                    k.value
                    for k in node.value.keys
                    if isinstance(k, ast.Constant) and isinstance(k.value, str)
                }
    return keys


def test_no_log_call_uses_a_field_name_that_logging_reserves() -> None:
    # logging raises KeyError for `extra` keys LogRecord already has ("created" once broke
    # `moderation create-topics`).
    keys = extra_keys_in_source()

    assert "bootstrap" in keys  # the scan finds the service's log calls
    assert keys.isdisjoint({*vars(logging.makeLogRecord({})), "message", "asctime"})


def test_a_repeated_message_passes_once_per_interval() -> None:
    now = [100.0]
    once = OncePerInterval(10.0, clock=lambda: now[0])

    def passes(msg: str) -> bool:
        return once.filter(
            logging.LogRecord("aiokafka.cluster", logging.ERROR, "", 1, msg, (), None)
        )

    missing = "Topic comments not found in cluster metadata"
    assert passes(missing)
    now[0] += 0.1
    assert not passes(missing)
    assert passes("Topic reports not found in cluster metadata")  # another message
    now[0] += 9.8
    assert not passes(missing)
    now[0] += 0.2
    assert passes(missing)


def test_configure_filters_aiokafka_cluster_once() -> None:
    root, cluster = logging.getLogger(), logging.getLogger("aiokafka.cluster")
    saved = (root.handlers[:], root.level, logging.getLogger("aiokafka").level)
    try:
        configure("INFO")
        configure("INFO")
        assert sum(isinstance(f, OncePerInterval) for f in cluster.filters) == 1
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("aiokafka").setLevel(saved[2])
        for f in [f for f in cluster.filters if isinstance(f, OncePerInterval)]:
            cluster.removeFilter(f)
