"""`moderation` command line: parse arguments, build Settings, hand over. Nothing else."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from service import logs
from service.domain.errors import ModerationError
from service.settings import Settings, SettingsError

log = logging.getLogger("service")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moderation",
        description="Comment moderation service. Settings come from MODERATION_* variables "
        "(see README.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("serve", help="consume comments, publish decisions (until SIGTERM)")
    sub.add_parser(
        "train",
        help="train the model (arguments go to `python -m classifier train`)",
        add_help=False,
    )
    topics = sub.add_parser("create-topics", help="create the topics the service uses")
    topics.add_argument("--partitions", type=int, default=3)
    tokens = sub.add_parser("tokens", help="manage API tokens (stored as hashes)")
    token_sub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    add = token_sub.add_parser("add", help="create a token; prints it once")
    add.add_argument("--id", required=True, help="who the token is for, e.g. alice")
    add.add_argument("--role", choices=["moderator", "admin"], default="moderator")
    add.add_argument(
        "--sites", required=True, help="comma-separated site ids the token may see, or *"
    )
    add.add_argument("--file", type=Path, help="tokens file (default: $MODERATION_TOKENS_FILE)")
    feed = sub.add_parser("feed", help="publish sample comment events to the comments topic")
    feed.add_argument(
        "--file",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "deploy" / "sample" / "comments.jsonl",
        help="JSON lines, one comment event per line",
    )
    feed.add_argument("--malformed", action="store_true", help="also send a few broken events")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["train"]:
        from classifier.train import main as train_main  # noqa: PLC0415 - only when asked

        return train_main(args_list[1:])
    args = _parser().parse_args(args_list)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"moderation: {exc}", file=sys.stderr)
        return 2
    if args.command == "tokens":
        return _add_token(args, settings)
    logs.configure(settings.log_level)
    try:
        return asyncio.run(_run(args, settings))
    except ModerationError as exc:
        log.error("fatal", extra={"error": str(exc)})  # noqa: TRY400 - the message is the story
        return 1


def _add_token(args: argparse.Namespace, settings: Settings) -> int:
    from service.auth import add_token  # noqa: PLC0415

    path = args.file or settings.tokens_file
    if path is None:
        print("moderation: give --file or set MODERATION_TOKENS_FILE", file=sys.stderr)
        return 2
    sites = [s.strip() for s in args.sites.split(",") if s.strip()]
    try:
        token = add_token(path, args.id, args.role, sites)
    except ModerationError as exc:
        print(f"moderation: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    from service import bootstrap, tools  # noqa: PLC0415 - keeps `--help` fast

    if args.command == "serve":
        return await bootstrap.serve(settings)
    if args.command == "create-topics":
        return await tools.create_topics(settings, args.partitions)
    if args.command == "feed":
        return await tools.feed(settings, args.file, malformed=args.malformed)
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
