"""`moderation` command line: parse arguments, build Settings, hand over. Nothing else."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from service import logs
from service.domain.errors import InvalidCommentReason, ModerationError
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
    status = sub.add_parser("status", help="consumer lag, review queue, outbox, versions")
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    replay = sub.add_parser(
        "replay", help="re-publish dead letters of one reason to the comments topic"
    )
    replay.add_argument(
        "--reason",
        required=True,
        choices=[r.value for r in InvalidCommentReason],
        help="the dead-letter reason to select",
    )
    replay.add_argument("--dry-run", action="store_true", help="list, publish nothing")
    replay.add_argument("--limit", type=_positive, help="at most this many records")
    shadow = sub.add_parser(
        "shadow-report", help="compare the shadow policy's decisions with the live ones"
    )
    shadow.add_argument("--json", action="store_true", help="print JSON instead of text")
    feed = sub.add_parser("feed", help="publish sample comment events to the comments topic")
    feed.add_argument(
        "--file",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "deploy" / "sample" / "comments.jsonl",
        help="JSON lines, one comment event per line",
    )
    feed.add_argument("--malformed", action="store_true", help="also send a few broken events")
    return parser


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


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
    from service import bootstrap, ops, shadow_report, tools  # noqa: PLC0415 - keeps --help fast

    if args.command == "serve":
        return await bootstrap.serve(settings)
    if args.command == "create-topics":
        return await tools.create_topics(settings, args.partitions)
    if args.command == "feed":
        return await tools.feed(settings, args.file, malformed=args.malformed)
    if args.command == "status":
        report = await ops.status(settings)
        print(json.dumps(report, indent=2) if args.json else ops.format_status(report))
        return 0
    if args.command == "replay":
        done = await ops.replay(
            settings, reason=args.reason, dry_run=args.dry_run, limit=args.limit
        )
        print(ops.format_replay(done))
        return 0
    if args.command == "shadow-report":
        shadow = await shadow_report.shadow_report(settings)
        print(
            json.dumps(shadow, indent=2)
            if args.json
            else shadow_report.format_shadow_report(shadow)
        )
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
