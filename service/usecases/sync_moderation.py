"""Synchronous moderation: one comment over HTTP, decided by the same pipeline, policy and
model as the Kafka path, stored and published the same way (the decision goes out through the
outbox), idempotent by (site_id, id)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from service.contracts.codec import (
    SourceRecord,
    auto_event_id,
    decision_document,
    decision_key,
    encode_decision,
)
from service.domain.errors import InvalidComment, InvalidCommentReason
from service.domain.model import Comment, Decision, Scores
from service.domain.policy import Policy
from service.domain.review import OutboxDraft, StoredComment
from service.usecases.pipeline import BatchOutcome, Pipeline, stored_comment
from service.usecases.ports import Clock, DecisionLog

log = logging.getLogger(__name__)


class DecisionPending(Exception):
    """The latency budget ran out; the decision is still being made and will be published."""


class ScoringFailed(Exception):
    """The model raised, or gave scores outside 0-1, for comments scored without a decision."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    decision: Decision
    decided_at: datetime
    replay: bool  # an earlier request already decided this comment

    def document(self) -> dict[str, Any]:
        event_id = auto_event_id(self.decision.site_id, self.decision.comment_id)
        return decision_document(self.decision, event_id, self.decided_at)


class SyncModerator:
    def __init__(
        self,
        pipeline: Pipeline,
        store: DecisionLog,
        clock: Clock,
        executor: Executor,
        *,
        decisions_topic: str,
    ) -> None:
        self._pipeline = pipeline
        self._store = store
        self._clock = clock
        self._executor = executor
        self._topic = decisions_topic
        self._pending: set[asyncio.Task[SyncResult]] = set()

    async def moderate(
        self, raw: bytes, budget_seconds: float | None, *, queue_review: bool = True
    ) -> SyncResult:
        """Decide one comment event (the same JSON as on the `comments` topic). Raises
        `InvalidComment` for a bad event, `DecisionPending` when the budget runs out first
        (the work goes on, and its decision is published and stored). With `queue_review`
        False a `review` is stored and published but left out of the review queue: the
        caller's own moderators decide it."""
        task = asyncio.create_task(self._moderate(raw, queue_review=queue_review))
        self._pending.add(task)
        task.add_done_callback(self._finished)
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=budget_seconds)
        except TimeoutError:
            raise DecisionPending from None

    def versions(self) -> tuple[str, str]:
        """The model and policy versions in force."""
        return self._pipeline.model_version, self._pipeline.policy.version

    @property
    def policy(self) -> Policy:
        return self._pipeline.policy

    async def score(
        self, comments: Sequence[Comment], budget_seconds: float | None
    ) -> list[Scores]:
        """The live model's scores, and nothing else: no decision, nothing stored, published
        or logged about the comments. Raises `DecisionPending` when the budget runs out and
        `ScoringFailed` when the model fails."""
        classifier = self._pipeline.classifier
        work = asyncio.get_running_loop().run_in_executor(
            self._executor, classifier.score, list(comments)
        )
        try:
            scores = await asyncio.wait_for(work, timeout=budget_seconds)
        except TimeoutError:
            raise DecisionPending from None
        except Exception as exc:  # the model is a black box; its message may quote the text
            log.error("scoring failed", extra={"error": type(exc).__name__})  # noqa: TRY400
            raise ScoringFailed from None
        if len(scores) != len(comments) or not all(_in_range(s) for s in scores):
            log.error("model returned invalid scores")
            raise ScoringFailed
        return scores

    def _finished(self, task: asyncio.Task[SyncResult]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and isinstance(task.exception(), Exception):
            error = task.exception()
            if not isinstance(error, InvalidComment):
                log.error("synchronous moderation failed", extra={"error": repr(error)})

    async def drain(self) -> None:
        """Wait for decisions still being made (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def record_fixed(self, raw: bytes, decide: Callable[[Comment], Decision]) -> SyncResult:
        """Record and publish a decision made without the model (e.g. a trusted staff
        author), idempotently like `moderate`."""
        source = SourceRecord("http", -1, -1, None, None, raw)
        prepared = self._pipeline.prepare([source])
        if prepared.dead:
            raise prepared.dead[0][1]
        item = prepared.valid()[0]
        earlier = await self._store.auto_decision(item.comment.site_id, item.comment.id)
        if earlier is not None:
            return SyncResult(earlier.decision, earlier.decided_at, replay=True)
        decision = decide(item.comment)
        now = self._clock.now()
        stored = stored_comment(item, decision, now)
        return await self._record(stored, decision)

    async def _record(self, stored: StoredComment, decision: Decision) -> SyncResult:
        key = decision_key(stored.site_id, stored.comment_id)
        event_id = auto_event_id(stored.site_id, stored.comment_id)
        draft = OutboxDraft(
            event_id, self._topic, key, encode_decision(decision, event_id, stored.decided_at)
        )
        if await self._store.record_one(stored, draft):
            return SyncResult(decision, stored.decided_at, replay=False)
        # another request for the same comment won the race: its decision is the one
        winner = await self._store.auto_decision(stored.site_id, stored.comment_id)
        if winner is None:  # pragma: no cover - the row exists: record_one said so
            raise InvalidComment(InvalidCommentReason.INVALID_VALUE, "decision vanished")
        return SyncResult(winner.decision, winner.decided_at, replay=True)

    async def _moderate(self, raw: bytes, *, queue_review: bool) -> SyncResult:
        loop = asyncio.get_running_loop()
        source = SourceRecord("http", -1, -1, None, None, raw)
        prepared = await loop.run_in_executor(self._executor, self._pipeline.prepare, [source])
        if prepared.dead:
            raise prepared.dead[0][1]
        comment = prepared.valid()[0].comment
        earlier = await self._store.auto_decision(comment.site_id, comment.id)
        if earlier is not None:
            return SyncResult(earlier.decision, earlier.decided_at, replay=True)
        activity = await self._store.activity(prepared.query(self._clock.now()))
        outcome: BatchOutcome = await loop.run_in_executor(
            self._executor, partial(self._pipeline.finish, prepared, activity, with_shadow=False)
        )
        [stored] = outcome.stored
        if not queue_review:
            stored = replace(stored, queued=False)
        return await self._record(stored, _decision_of(stored))


def _in_range(scores: Scores) -> bool:
    values = [scores.spam, scores.abuse, scores.severe_toxicity, scores.insult, scores.threat]
    values += [scores.identity_attack, scores.profanity]
    return all(v is None or (math.isfinite(v) and 0.0 <= v <= 1.0) for v in values)


def _decision_of(stored: StoredComment) -> Decision:
    return Decision(
        comment_id=stored.comment_id,
        site_id=stored.site_id,
        action=stored.action,
        scores=stored.scores,
        reasons=stored.reasons,
        model_version=stored.model_version,
        policy_version=stored.policy_version,
        language=stored.language,
    )
