"""consume -> score -> decide -> encode, written against ports.

`Pipeline.process_batch` is the transform between `getmany` and the transaction commit: it
takes raw records and returns the records to publish. It does no I/O of its own; it is
synchronous CPU work that the Kafka runner calls in an executor.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from service.adapters.codec import (
    Header,
    Limits,
    SourceRecord,
    auto_event_id,
    decision_key,
    decode_comment,
    encode_dead_letter,
    encode_decision,
)
from service.domain.errors import InvalidComment, InvalidCommentReason
from service.domain.model import Comment, Decision, Scores
from service.domain.policy import Policy, decide
from service.domain.review import StoredComment
from service.ports import Classifier, Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Topics:
    comments: str = "comments"
    decisions: str = "comment-decisions"
    dead_letter: str = "comments-dlq"


@dataclass(frozen=True, slots=True)
class OutputRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[Header] = ()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: SourceRecord
    reason: str


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    records: list[OutputRecord]
    stored: list[StoredComment] = field(default_factory=list)  # for the review store
    actions: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    dead: list[DeadLetter] = field(default_factory=list)


def _stored(
    comment: Comment, decision: Decision, decided_at: datetime, record: SourceRecord
) -> StoredComment:
    return StoredComment(
        site_id=comment.site_id,
        comment_id=comment.id,
        text=comment.text,
        author_id=comment.author.id,
        author_name=comment.author.name,
        thread_id=comment.thread_id,
        created_at=comment.created_at,
        scores=decision.scores,
        reasons=decision.reasons,
        action=decision.action,
        model_version=decision.model_version,
        policy_version=decision.policy_version,
        decided_at=decided_at,
        # the event as received (it decoded, so it is UTF-8), unknown fields included
        event_json=(record.value or b"").decode("utf-8"),
    )


def _valid(scores: Scores) -> bool:
    return all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in (scores.spam, scores.abuse))


class Pipeline:
    def __init__(
        self,
        classifier: Classifier,
        policy: Policy,
        clock: Clock,
        topics: Topics,
        limits: Limits,
    ) -> None:
        self._classifier = classifier
        self._policy = policy
        self._clock = clock
        self._topics = topics
        self._limits = limits

    def process_batch(self, records: Sequence[SourceRecord]) -> BatchOutcome:
        outcome = BatchOutcome(records=[])
        parsed: list[tuple[SourceRecord, Comment]] = []
        for record in records:
            try:
                parsed.append((record, decode_comment(record.value, self._limits)))
            except InvalidComment as error:
                self._dead_letter(outcome, record, error)
        for (record, comment), scores in zip(parsed, self._score(parsed), strict=True):
            if isinstance(scores, InvalidComment):
                self._dead_letter(outcome, record, scores)
                continue
            decision = decide(comment, scores, self._policy, self._classifier.version)
            decided_at = self._clock.now()
            value = encode_decision(
                decision, auto_event_id(comment.site_id, comment.id), decided_at
            )
            outcome.stored.append(_stored(comment, decision, decided_at, record))
            outcome.records.append(
                OutputRecord(
                    self._topics.decisions,
                    decision_key(comment.site_id, comment.id),
                    value,
                    (("content-type", b"application/json"),),
                )
            )
            outcome.actions[decision.action.value] += 1
        return outcome

    def _score(
        self, parsed: Sequence[tuple[SourceRecord, Comment]]
    ) -> list[Scores | InvalidComment]:
        """Score the batch at once; if that fails, one by one, so one comment that breaks
        the model is dead-lettered instead of taking its batch down with it."""
        if not parsed:
            return []
        comments = [comment for _, comment in parsed]
        try:
            batch = self._classifier.score(comments)
            if len(batch) == len(comments) and all(_valid(s) for s in batch):
                return list(batch)
        except Exception:
            log.exception("batch scoring failed; scoring one by one")
        return [self._score_one(comment) for comment in comments]

    def _score_one(self, comment: Comment) -> Scores | InvalidComment:
        try:
            [scores] = self._classifier.score([comment])
        except Exception as exc:  # the model is a black box: any failure is this record's
            return InvalidComment(
                InvalidCommentReason.SCORING_FAILED, f"{type(exc).__name__}: {exc}"[:500]
            )
        if not _valid(scores):
            return InvalidComment(
                InvalidCommentReason.SCORING_FAILED, f"model returned invalid scores {scores}"
            )
        return scores

    def _dead_letter(
        self, outcome: BatchOutcome, record: SourceRecord, error: InvalidComment
    ) -> None:
        value, headers = encode_dead_letter(record, error, self._clock.now())
        outcome.records.append(OutputRecord(self._topics.dead_letter, record.key, value, headers))
        outcome.dead_letters[error.reason.value] += 1
        outcome.dead.append(DeadLetter(record, error.reason.value))
