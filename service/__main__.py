"""`moderation` / `python -m service`: the command line lives in service/entrypoints/cli/."""

from __future__ import annotations

import sys

from service.entrypoints.cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
