"""Validate documents against the JSON Schema files the service ships."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "service" / "contracts" / "schemas"


@cache
def _validator(name: str) -> Any:
    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate(name: str, document: Any) -> None:
    """Raise jsonschema.ValidationError if `document` breaks schema `name` (e.g. decision.v1)."""
    _validator(name).validate(document)


def is_valid(name: str, document: Any) -> bool:
    return bool(_validator(name).is_valid(document))
