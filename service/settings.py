"""Typed, validated settings, read once at start from `MODERATION_*` variables.

`Settings.from_env(env)` takes the mapping explicitly (tests pass a dict) and reports every bad
value at once, naming the variable.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, TypeVar

from service.domain.errors import InvalidPolicy, ModerationError
from service.domain.policy import LanguageMode, LanguageRules, Policy, Thresholds

PREFIX: Final = "MODERATION_"
# Coral's phase timeout covers the network both ways and Coral's own handling: the budget
# defaults to 60% of it and must leave at least this much.
CORAL_BUDGET_SHARE: Final = 0.6
CORAL_MARGIN_MS: Final = 50
# Abuse: approve below 0.3, reject at 0.9.  On the news-comment test split (Civil Comments)
# the shipped model at 0.5 auto-approved 54% of the abusive comments; at 0.3 it approves
# 27% and sends 26% of all comments to review, and 0.9 auto-rejects 0.04% of the good ones
# (README "Thresholds on news comments" has the table and the command).
DEFAULT_ABUSE_THRESHOLDS: Final = (0.3, 0.9)
DEFAULT_MAX_TEXT_CHARS: Final = 20_000  # MODERATION_MAX_TEXT_CHARS
MAX_WORKERS: Final = 64  # MODERATION_WORKERS / `serve --workers`
NAME_CHARS: Final = 200  # the longest instance or transactional id
T = TypeVar("T")


class SettingsError(ModerationError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Settings:  # secrets are kept out of repr: settings may be logged
    state_dir: Path
    kafka_bootstrap: str
    http_host: str
    http_port: int
    database_url: str
    model_path: Path
    policy_file: Path | None
    tokens_file: Path | None
    topic_comments: str
    topic_decisions: str
    topic_dlq: str
    topic_shadow: str
    topic_reports: str
    topic_appeals: str
    group_id: str
    instance_id: str
    transactional_id: str
    batch_max_records: int
    max_text_chars: int
    max_message_bytes: int
    policy: Policy
    log_level: str
    kafka_retry_max_seconds: float
    claim_lease_seconds: float
    dev_mode: bool
    moderate_budget_seconds: float
    coral_secrets: tuple[str, ...] = field(repr=False)
    coral_budget_seconds: float
    coral_staff: str
    model_reload_seconds: float = 10.0  # 0: never look for a promoted model
    shadow_model_path: Path | None = None  # a candidate model scored beside the live one
    coral_timeout_seconds: float = 0.2  # the phase's timeout in Coral's admin
    coral_on_approve: str = "no_opinion"  # no_opinion (204) or approve (APPROVED)
    coral_format: str = "html"  # the phase's body format in Coral's admin: html or plain
    perspective_rate: float = 50.0  # requests per second per key
    perspective_burst: float = 100.0
    perspective_budget_seconds: float = 0.5
    undo_seconds: float = 10.0  # how long a bulk action can be undone before it is applied
    workers: int = (
        1  # pipeline processes `serve` runs on this host (service/entrypoints/serve/workers.py)
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
        r = _Reader(os.environ if env is None else env)
        base = cwd or Path.cwd()

        def path(raw: str) -> Path:
            # absolute, but symlinks kept: the model path is a link that promotions repoint
            return Path(os.path.abspath(base / raw))

        state_dir = r.get("STATE_DIR", path, Path(os.path.abspath(base / ".state")))
        group_id = r.get("GROUP_ID", _name, "moderation")
        instance_id = r.get("INSTANCE_ID", _name, socket.gethostname())
        spam = (
            r.get("SPAM_APPROVE_BELOW", _float_in(0, 1), 0.5),
            r.get("SPAM_REJECT_AT", _float_in(0, 1), 0.9),
        )
        abuse = (
            r.get("ABUSE_APPROVE_BELOW", _float_in(0, 1), DEFAULT_ABUSE_THRESHOLDS[0]),
            r.get("ABUSE_REJECT_AT", _float_in(0, 1), DEFAULT_ABUSE_THRESHOLDS[1]),
        )
        coral_timeout = r.get("CORAL_TIMEOUT_MS", _float_in(1, 60_000), 200.0)
        settings = cls(
            state_dir=state_dir,
            kafka_bootstrap=r.get("KAFKA_BOOTSTRAP", _bootstrap, "127.0.0.1:9092"),
            http_host=r.get("HTTP_HOST", _nonblank, "127.0.0.1"),
            http_port=r.get("HTTP_PORT", _int_in(0, 65535), 8080),
            database_url=r.get(
                "DATABASE_URL", _database_url, f"sqlite:///{state_dir / 'moderation.db'}"
            ),
            model_path=r.get("MODEL_PATH", path, state_dir / "model"),
            policy_file=r.get("POLICY_FILE", path, None),
            tokens_file=r.get("TOKENS_FILE", path, None),
            topic_comments=r.get("TOPIC_COMMENTS", _topic, "comments"),
            topic_decisions=r.get("TOPIC_DECISIONS", _topic, "comment-decisions"),
            topic_dlq=r.get("TOPIC_DLQ", _topic, "comments-dlq"),
            topic_shadow=r.get("TOPIC_SHADOW", _topic, "comment-decisions-shadow"),
            topic_reports=r.get("TOPIC_REPORTS", _topic, "comment-reports"),
            topic_appeals=r.get("TOPIC_APPEALS", _topic, "comment-appeals"),
            group_id=group_id,
            instance_id=instance_id,
            transactional_id=r.get("TRANSACTIONAL_ID", _name, f"{group_id}-{instance_id}"),
            batch_max_records=r.get("BATCH_MAX_RECORDS", _int_in(1, 100_000), 500),
            max_text_chars=r.get("MAX_TEXT_CHARS", _int_in(1, 1_000_000), DEFAULT_MAX_TEXT_CHARS),
            max_message_bytes=r.get("MAX_MESSAGE_BYTES", _int_in(1024, 100_000_000), 1_000_000),
            log_level=r.get("LOG_LEVEL", _log_level, "INFO"),
            kafka_retry_max_seconds=r.get("KAFKA_RETRY_MAX_SECONDS", _float_in(0.1, 600), 30.0),
            claim_lease_seconds=r.get("CLAIM_LEASE_SECONDS", _float_in(1, 86_400), 600.0),
            dev_mode=r.get("DEV_MODE", _bool, False),
            moderate_budget_seconds=r.get("MODERATE_BUDGET_MS", _float_in(1, 60_000), 1000.0)
            / 1000,
            coral_secrets=r.get("CORAL_SECRETS", _secrets, ()),
            coral_timeout_seconds=coral_timeout / 1000,
            coral_budget_seconds=r.get(
                "CORAL_BUDGET_MS", _float_in(1, 60_000), coral_timeout * CORAL_BUDGET_SHARE
            )
            / 1000,
            coral_staff=r.get("CORAL_STAFF", _one_of("approve", "score"), "score"),
            coral_on_approve=r.get(
                "CORAL_ON_APPROVE", _one_of("no_opinion", "approve"), "no_opinion"
            ),
            coral_format=r.get("CORAL_FORMAT", _one_of("html", "plain"), "html"),
            perspective_rate=r.get("PERSPECTIVE_RATE", _float_in(0.01, 1_000_000), 50.0),
            perspective_burst=r.get("PERSPECTIVE_BURST", _float_in(1, 1_000_000), 100.0),
            perspective_budget_seconds=r.get("PERSPECTIVE_BUDGET_MS", _float_in(1, 60_000), 500.0)
            / 1000,
            undo_seconds=r.get("UNDO_SECONDS", _float_in(1, 3600), 10.0),
            model_reload_seconds=r.get("MODEL_RELOAD_SECONDS", _float_in(0, 86_400), 10.0),
            workers=r.get("WORKERS", _int_in(1, MAX_WORKERS), 1),
            shadow_model_path=r.get("SHADOW_MODEL_PATH", path, None),
            policy=_policy(
                r,
                r.get("POLICY_VERSION", _name, "env-1"),
                spam,
                abuse,
                LanguageRules(
                    r.get("SUPPORTED_LANGUAGES", _languages, frozenset({"en"})),
                    r.get("UNSUPPORTED_LANGUAGE", _language_mode, LanguageMode.REVIEW),
                ),
            ),
        )
        margin = settings.coral_timeout_seconds - settings.coral_budget_seconds
        if margin < CORAL_MARGIN_MS / 1000:
            r.problems.append(
                f"{PREFIX}CORAL_BUDGET_MS={settings.coral_budget_seconds * 1000:g} must be at "
                f"least {CORAL_MARGIN_MS} ms below {PREFIX}CORAL_TIMEOUT_MS="
                f"{settings.coral_timeout_seconds * 1000:g} (the phase's timeout in Coral), "
                "or Coral gives up before the answer arrives"
            )
        r.problems += worker_id_problems(settings)
        r.raise_if_problems()
        return settings

    def with_workers(self, workers: int) -> Settings:
        """`serve --workers N`, which overrides MODERATION_WORKERS, checked as the variable is."""
        if not 1 <= workers <= MAX_WORKERS:
            raise SettingsError([f"--workers {workers}: must be between 1 and {MAX_WORKERS}"])
        settings = replace(self, workers=workers)
        problems = worker_id_problems(settings)
        if problems:
            raise SettingsError(problems)
        return settings


def worker_suffix(index: int) -> str:
    """What worker `index` of `serve --workers N` adds to the instance and transactional ids."""
    return f"-w{index}"


def worker_id_problems(settings: Settings) -> list[str]:
    """With several workers, each id gets a suffix; the longest one must still be a name."""
    if settings.workers == 1:
        return []
    room = NAME_CHARS - len(worker_suffix(settings.workers - 1))
    return [
        f"{PREFIX}{name}={value!r}: at most {room} characters with {settings.workers} workers "
        f"(each worker adds {worker_suffix(settings.workers - 1)!r} or shorter)"
        for name, value in (
            ("INSTANCE_ID", settings.instance_id),
            ("TRANSACTIONAL_ID", settings.transactional_id),
        )
        if len(value) > room
    ]


def _policy(
    r: _Reader,
    version: str,
    spam: tuple[float, float],
    abuse: tuple[float, float],
    languages: LanguageRules,
) -> Policy:
    try:
        return Policy.simple(
            version, spam=Thresholds(*spam), abuse=Thresholds(*abuse), languages=languages
        )
    except InvalidPolicy as exc:
        r.problems.append(f"{PREFIX}SPAM_*/{PREFIX}ABUSE_* thresholds: {exc}")
        return Policy.simple(
            version, spam=Thresholds(0.5, 0.9), abuse=Thresholds(*DEFAULT_ABUSE_THRESHOLDS)
        )


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.problems: list[str] = []

    def get(self, name: str, parse: Callable[[str], T], default: T) -> T:
        raw = self._env.get(PREFIX + name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw.strip())
        except ValueError as exc:
            self.problems.append(f"{PREFIX}{name}={raw!r}: {exc}")
            return default

    def raise_if_problems(self) -> None:
        if self.problems:
            raise SettingsError(self.problems)


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("not a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _float_in(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("not a number") from None
        if not low <= value <= high:  # also rejects nan
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _name(raw: str) -> str:
    if not re.fullmatch(rf"[A-Za-z0-9._:-]{{1,{NAME_CHARS}}}", raw):
        raise ValueError("1-200 characters of A-Z a-z 0-9 . _ : -")
    return raw


def _nonblank(raw: str) -> str:
    return raw


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _secrets(raw: str) -> tuple[str, ...]:
    secrets = tuple(s.strip() for s in raw.split(",") if s.strip())
    if any(len(s) < 16 for s in secrets):
        raise ValueError("each comma-separated secret needs at least 16 characters")
    return secrets


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"one of {', '.join(choices)}")
        return raw

    return parse


def _languages(raw: str) -> frozenset[str]:
    codes = [c.strip() for c in raw.split(",") if c.strip()]
    if not codes or not all(re.fullmatch(r"[A-Za-z]{2,3}", c) for c in codes):
        raise ValueError("comma-separated ISO 639 language codes (2 or 3 letters), e.g. en,fr")
    return frozenset(c.lower() for c in codes)


def _language_mode(raw: str) -> LanguageMode:
    try:
        return LanguageMode(raw.lower())
    except ValueError:
        raise ValueError(f"one of {', '.join(m.value for m in LanguageMode)}") from None


def _topic(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", raw):
        raise ValueError("a Kafka topic name is 1-249 characters of A-Z a-z 0-9 . _ -")
    return raw


def _bootstrap(raw: str) -> str:
    for server in raw.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port[,host:port...], got {server.strip()!r}")
    return raw


def _database_url(raw: str) -> str:
    if not re.match(r"(sqlite:///|postgres(ql)?://)", raw):
        raise ValueError("expected sqlite:///PATH or postgresql://...")
    return raw


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("one of DEBUG, INFO, WARNING, ERROR")
    return level
