"""Reports and appeals from the sites: decode, apply to the review queue, or say why not.

Written against the `LearningStore` port; the Kafka adapter feeds it records and sends the
dead letters it returns. Applying is idempotent, so a record read twice changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from service.contracts.codec import Limits, SourceRecord, decode_feedback
from service.domain.errors import InvalidComment, InvalidCommentReason
from service.domain.feedback import FeedbackKind, FeedbackOutcome, NotRejected, UnknownComment
from service.usecases.ports import Clock, LearningStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    outcome: FeedbackOutcome | None  # None: dead-lettered
    error: InvalidComment | None = None


class FeedbackHandler:
    def __init__(self, store: LearningStore, clock: Clock, limits: Limits) -> None:
        self._store = store
        self._clock = clock
        self._limits = limits

    async def handle(self, kind: FeedbackKind, record: SourceRecord) -> FeedbackResult:
        """Raises `StoreUnavailable` (retry the record); every other failure is the record's
        own and comes back as a dead letter with its reason."""
        try:
            feedback = decode_feedback(kind, record.value, self._limits, self._clock.now())
            outcome = await self._store.apply_feedback(feedback)
        except InvalidComment as error:
            return FeedbackResult(None, error)
        except UnknownComment as exc:
            return FeedbackResult(
                None, InvalidComment(InvalidCommentReason.UNKNOWN_COMMENT, str(exc))
            )
        except NotRejected as exc:
            return FeedbackResult(
                None,
                InvalidComment(
                    InvalidCommentReason.NOT_REJECTED, f"{exc}: only a rejection can be appealed"
                ),
            )
        log.info(
            "feedback applied",
            extra={
                "kind": kind.value,
                "site_id": feedback.site_id,
                "comment_id": feedback.comment_id,
                "outcome": outcome.value,
            },
        )
        return FeedbackResult(outcome)
