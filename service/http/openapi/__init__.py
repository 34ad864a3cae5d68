"""The OpenAPI 3.1 document of the HTTP app, built from the same limits the parsers enforce."""

from __future__ import annotations

from service.http.openapi.review import document

__all__ = ["document"]
