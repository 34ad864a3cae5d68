from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

from service.logs import JsonFormatter


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
