"""The `moderation` command line: parse arguments, build Settings, hand over to the command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from service.adapters import logs
from service.domain.errors import InvalidCommentReason, ModerationError
from service.settings import MAX_WORKERS, Settings, SettingsError

if TYPE_CHECKING:
    from service.entrypoints.serve.workers import WorkerRole

log = logging.getLogger("service")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moderation",
        description="Comment moderation service. Settings come from MODERATION_* variables "
        "(see README.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="consume comments, publish decisions (until SIGTERM)")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help=f"pipeline processes on this host behind one HTTP port, 1-{MAX_WORKERS} "
        "(default: $MODERATION_WORKERS, else 1)",
    )
    # set by the supervisor of `serve --workers N` for each of its workers
    # (service/entrypoints/serve/workers.py)
    serve.add_argument("--worker", type=_worker_role, help=argparse.SUPPRESS)
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
    add.add_argument(
        "--role",
        choices=["moderator", "admin", "site"],
        default="moderator",
        help="moderator or admin (the API and the page), or site (a site's backend: "
        "POST /api/v1/moderate, and the key of the Perspective-compatible API)",
    )
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
        default=Path(__file__).resolve().parents[3] / "deploy" / "sample" / "comments.jsonl",
        help="JSON lines, one comment event per line",
    )
    feed.add_argument("--malformed", action="store_true", help="also send a few broken events")
    retrain = sub.add_parser(
        "retrain",
        help="train a candidate on the shipped data plus the label store; promote it only if "
        "it is not worse (exit 0: promoted or passes a dry run, 3: refused)",
    )
    retrain.add_argument("--data", type=Path, help="dataset directory (default: the shipped one)")
    retrain.add_argument("--dry-run", action="store_true", help="compare, write nothing")
    retrain.add_argument(
        "--candidate-out",
        type=Path,
        help="write the candidate here instead of promoting it (to run it in shadow mode with "
        "MODERATION_SHADOW_MODEL_PATH first)",
    )
    retrain.add_argument(
        "--min-labels", type=_positive, default=50, help="refuse to run with fewer labels"
    )
    rollback = sub.add_parser(
        "rollback", help="point the live model at a kept version (no VERSION: list them)"
    )
    rollback.add_argument("version", nargs="?", help="a version kept by an earlier promotion")
    suggest = sub.add_parser(
        "suggest-thresholds",
        help="thresholds for a site from its human labels and error targets",
    )
    suggest.add_argument("--site", required=True, help="the site id")
    suggest.add_argument(
        "--max-false-reject",
        type=_share,
        default=0.005,
        help="at most this share of good comments auto-rejected (default 0.005)",
    )
    suggest.add_argument(
        "--max-miss",
        type=_share,
        default=0.05,
        help="at most this share of spam/abuse auto-approved (default 0.05)",
    )
    return parser


def _share(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError("must be a share between 0 and 1, e.g. 0.005")
    return value


def _worker_role(raw: str) -> WorkerRole:
    from service.entrypoints.serve.workers import WorkerRole  # noqa: PLC0415 - only in a worker

    try:
        return WorkerRole.parse(raw)
    except ValueError:
        raise argparse.ArgumentTypeError("expected INDEX:PARENT_PID:FD") from None


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0911 - dispatch
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["train"]:
        from classifier.train import main as train_main  # noqa: PLC0415 - only when asked

        return train_main(args_list[1:])
    args = _parser().parse_args(args_list)
    role: WorkerRole | None = getattr(args, "worker", None)
    if role is not None and not _die_with(role):
        return 1
    try:
        settings = Settings.from_env()
        if getattr(args, "workers", None) is not None:
            settings = settings.with_workers(args.workers)
    except SettingsError as exc:
        print(f"moderation: {exc}", file=sys.stderr)
        return 2
    if args.command == "tokens":
        return _add_token(args, settings)
    if args.command == "rollback":
        return _rollback(settings.model_path, args.version)
    logs.configure(settings.log_level, None if role is None else {"worker": role.name})
    try:
        return asyncio.run(_run(args, settings))
    except ModerationError as exc:
        log.error("fatal", extra={"error": str(exc)})  # noqa: TRY400 - the message is the story
        return 1


def _die_with(role: WorkerRole) -> bool:
    """A worker dies with its supervisor; False if the supervisor is already gone."""
    from service.entrypoints.serve.workers import die_with_parent  # noqa: PLC0415 - only in a worker

    if die_with_parent(role.parent_pid):
        return True
    print("moderation: worker: the supervisor has exited already", file=sys.stderr)
    return False


async def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """One process (the default), the supervisor of `--workers N`, or one of its workers."""
    if args.worker is None and settings.workers > 1:
        from service.entrypoints.serve import workers  # noqa: PLC0415 - the supervisor loads no model

        return await workers.supervise(settings)
    from service.entrypoints.serve import run  # noqa: PLC0415

    return await run.serve(settings, sock=None if args.worker is None else args.worker.socket())


def _rollback(model_path: Path, version: str | None) -> int:
    from service.adapters import model_registry  # noqa: PLC0415

    live = model_registry.live_version(model_path)
    if version is None:
        for kept in model_registry.kept_versions(model_path):
            print(f"{'*' if kept == live else ' '} {kept}")
        if live is not None and live not in model_registry.kept_versions(model_path):
            print(f"* {live} (live, not yet kept)")
        return 0
    try:
        target = model_registry.rollback(model_path, version)
    except (model_registry.ModelNotKept, OSError) as exc:
        print(f"moderation: rollback: {exc}", file=sys.stderr)
        return 2
    print(
        f"{model_path} -> {target} (was {live}); running services switch within "
        "MODERATION_MODEL_RELOAD_SECONDS, or on SIGHUP"
    )
    return 0


def _add_token(args: argparse.Namespace, settings: Settings) -> int:
    from service.adapters.token_file import add_token  # noqa: PLC0415

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


async def _run(args: argparse.Namespace, settings: Settings) -> int:  # noqa: PLR0911 - dispatch
    if args.command == "serve":
        return await _serve(args, settings)
    from service.entrypoints.cli import replay, shadow_report, status, tools  # noqa: PLC0415

    if args.command == "create-topics":
        return await tools.create_topics(settings, args.partitions)
    if args.command == "feed":
        return await tools.feed(settings, args.file, malformed=args.malformed)
    if args.command == "status":
        report = await status.status(settings)
        print(json.dumps(report, indent=2) if args.json else status.format_status(report))
        return 0
    if args.command == "replay":
        done = await replay.replay(
            settings, reason=args.reason, dry_run=args.dry_run, limit=args.limit
        )
        print(replay.format_replay(done))
        return 0
    if args.command == "shadow-report":
        shadow = await shadow_report.shadow_report(settings)
        print(
            json.dumps(shadow, indent=2)
            if args.json
            else shadow_report.format_shadow_report(shadow)
        )
        return 0
    if args.command in ("retrain", "suggest-thresholds"):
        return await _learning(args, settings)
    raise AssertionError(args.command)


async def _learning(args: argparse.Namespace, settings: Settings) -> int:
    import classifier  # noqa: PLC0415
    from classifier.data import DEFAULT_DATA_DIR  # noqa: PLC0415
    from service.adapters import model_registry  # noqa: PLC0415
    from service.adapters.sql.store import SqlReviewStore  # noqa: PLC0415
    from service.domain.learning import PromotionRule  # noqa: PLC0415
    from service.usecases import retrain  # noqa: PLC0415

    store = SqlReviewStore.from_url(settings.database_url)
    try:
        await store.migrate()
        if args.command == "suggest-thresholds":
            try:
                model = classifier.load_model(settings.model_path)
            except classifier.ModelLoadError as exc:
                print(f"moderation: cannot load the live model: {exc}", file=sys.stderr)
                return 2
            targets = (args.max_false_reject, args.max_miss)
            suggestion = await retrain.thresholds_for(
                store,
                model,
                args.site,
                max_false_reject=targets[0],
                max_miss=targets[1],
                now=datetime.now(UTC),
            )
            print(retrain.render_thresholds(args.site, suggestion, targets), end="")
            return 0
        labels = await store.labels()
    finally:
        await store.close()
    try:
        report = await asyncio.to_thread(
            retrain.retrain,
            labels,
            model_path=settings.model_path,
            promote=model_registry.promote,
            data_dir=args.data or DEFAULT_DATA_DIR,
            rule=PromotionRule(min_labels=args.min_labels),
            dry_run=args.dry_run,
            candidate_out=args.candidate_out,
        )
    except (retrain.RetrainError, OSError) as exc:
        print(f"moderation: retrain: {exc}", file=sys.stderr)
        return 2
    print(retrain.render(report), end="")
    return 0 if report.verdict.promote else 3
