"""`python -m service.entrypoints.http.openapi [PATH]`: write the document (default
settings) to PATH, or print it. `make openapi` refreshes the committed snapshot
docs/openapi.json with it."""

from __future__ import annotations

import sys
from pathlib import Path

from service.entrypoints.http.openapi import document, rendered


def main(argv: list[str]) -> int:
    text = rendered(document())
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
