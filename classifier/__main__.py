"""``python -m classifier {train,score,evaluate} ...``"""

from __future__ import annotations

import sys

USAGE = (
    "usage: python -m classifier {train,score,evaluate} [options]  (-h after a command for help)\n"
)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "train":
        from classifier.train import main as run  # noqa: PLC0415 - keep startup light
    elif command == "score":
        from classifier.score_cli import main as run  # noqa: PLC0415
    elif command == "evaluate":
        from classifier.evaluate import main as run  # noqa: PLC0415
    else:
        sys.stderr.write(f"unknown command {command!r}\n{USAGE}")
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
