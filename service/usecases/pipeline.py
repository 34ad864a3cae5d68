"""consume -> score -> decide -> encode, written against ports.

A batch goes through two synchronous steps that the Kafka runner calls in an executor, with
one store read between them:

    prepared = pipeline.prepare(records)          # decode, normalise, hash
    activity = await store.activity(prepared.query(...))   # authors' and texts' history
    outcome = pipeline.finish(prepared, activity)  # score, decide, encode

`process_batch` does both steps with no history, for callers without a store.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from service.contracts.codec import (
    Header,
    Limits,
    SourceRecord,
    auto_event_id,
    decision_key,
    decode_comment,
    encode_dead_letter,
    encode_decision,
)
from service.domain.errors import InvalidComment
from service.domain.language import given_language
from service.domain.model import Comment, Decision, Language, Reason, Scores, SubScore
from service.domain.policy import Policy, SitePolicy, decide
from service.domain.review import Activity, ActivityQuery, AuthorKey, StoredComment
from service.domain.rules import DecisionContext
from service.domain.spot_check import spot_check
from service.usecases.ports import (
    BatchCounts,
    Classifier,
    Clock,
    LanguageDetector,
    PrenormalizedClassifier,
)

log = logging.getLogger(__name__)

Normalizer = Callable[[str], str]
_WORD: Final = re.compile(r"[a-z_]+")
_JSON: Final = (("content-type", b"application/json"),)
_SUB_SCORE_FIELDS: Final = tuple(name.value for name in SubScore)  # = the `Scores` fields


@dataclass(frozen=True, slots=True)
class Topics:
    comments: str = "comments"
    decisions: str = "comment-decisions"
    dead_letter: str = "comments-dlq"
    shadow: str = "comment-decisions-shadow"


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
    shadow_actions: Counter[str] = field(default_factory=Counter)
    scoring_failures: int = 0

    def counts(self) -> BatchCounts:
        return BatchCounts(self.actions, self.dead_letters, self.scoring_failures)


@dataclass(frozen=True, slots=True)
class _Valid:
    record: SourceRecord
    comment: Comment
    normalized: str
    text_hash: str | None  # None while no policy has a campaign rule: nothing reads it

    @property
    def author(self) -> AuthorKey | None:
        author = self.comment.author.id
        return None if author is None else (self.comment.site_id, author)

    @property
    def campaign_author(self) -> str:
        """Who posted, for counting distinct authors: anonymous comments each count once."""
        author = self.comment.author.id
        return f"author:{author}" if author is not None else f"anon:{self.comment.key}"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A decoded batch: valid comments in order, and the dead letters already made."""

    order: list[_Valid | DeadLetter]
    dead: list[tuple[SourceRecord, InvalidComment]]
    policy: Policy  # the policy in force when the batch began: one batch, one policy

    def valid(self) -> list[_Valid]:
        return [v for v in self.order if isinstance(v, _Valid)]

    def query(self, now: datetime) -> ActivityQuery:
        flood, campaign = self.policy.windows()
        valid = [v for v in self.order if isinstance(v, _Valid)]
        authors = self.policy.needs_author_history()
        named = tuple({v.author for v in valid if v.author is not None})
        # only the history some rule reads; the trusted / blocked status of every named author
        # (read per batch: a block applies from the author's next batch, on every instance)
        return ActivityQuery(
            authors=named if authors else (),
            hashes=tuple({v.text_hash for v in valid if v.text_hash is not None}),
            exclude=tuple((v.comment.site_id, v.comment.id) for v in valid),
            flood_since=now - timedelta(seconds=flood),
            campaign_since=now - timedelta(seconds=campaign),
            statuses=named,
        )


def text_hash(normalized: str) -> str:
    """The same for near-same texts: digits, punctuation and spacing do not count."""
    # the runs of a-z and _, one space apart: anything else is a separator
    skeleton = " ".join(_WORD.findall(normalized))
    return hashlib.sha256(skeleton.encode()).hexdigest()[:32]


def _valid_scores(scores: Scores) -> bool:
    """Every score the model gives is a probability (NaN and infinities fail the bounds)."""
    if not (0.0 <= scores.spam <= 1.0 and 0.0 <= scores.abuse <= 1.0):
        return False
    for name in _SUB_SCORE_FIELDS:
        value = getattr(scores, name)
        if value is not None and not 0.0 <= value <= 1.0:
            return False
    return True


class Pipeline:
    def __init__(
        self,
        classifier: Classifier,
        policy: Policy,
        clock: Clock,
        topics: Topics,
        limits: Limits,
        *,
        normalize: Normalizer = str.casefold,  # the service passes the classifier's
        shadow_classifier: Classifier | None = None,
        language_detector: LanguageDetector | None = None,  # None: the events' `lang` only
    ) -> None:
        self._classifier = classifier
        self._language_detector = language_detector
        self._shadow_classifier = shadow_classifier
        self._policy = policy
        self._clock = clock
        self._topics = topics
        self._limits = limits
        self._normalize = normalize

    @property
    def model_version(self) -> str:
        return self._classifier.version

    @property
    def classifier(self) -> Classifier:
        return self._classifier

    @property
    def policy(self) -> Policy:
        return self._policy

    def set_classifier(self, classifier: Classifier) -> None:
        """Takes effect from the next batch: a batch is scored and labelled by one model."""
        self._classifier = classifier

    @property
    def shadow_model_version(self) -> str | None:
        return None if self._shadow_classifier is None else self._shadow_classifier.version

    def set_policy(self, policy: Policy) -> None:
        """Takes effect from the next batch; the batch in hand keeps the one it began with."""
        self._policy = policy

    def process_batch(self, records: Sequence[SourceRecord]) -> BatchOutcome:
        return self.finish(self.prepare(records), Activity())

    def prepare(self, records: Sequence[SourceRecord]) -> Prepared:
        order: list[_Valid | DeadLetter] = []
        dead: list[tuple[SourceRecord, InvalidComment]] = []
        policy = self._policy
        # Campaigns match texts across sites, so one site's rule needs every site's hashes;
        # with none, the hash is neither computed nor stored (nor indexed: migration 11).
        campaigns = policy.windows()[1] > 0
        for record in records:
            try:
                comment = decode_comment(record.value, self._limits)
            except InvalidComment as error:
                dead.append((record, error))
                order.append(DeadLetter(record, error.reason.value))
                continue
            normalized = self._normalize(comment.text)
            digest = text_hash(normalized) if campaigns else None
            order.append(_Valid(record, comment, normalized, digest))
        return Prepared(order, dead, policy)

    def finish(
        self, prepared: Prepared, activity: Activity, *, with_shadow: bool = True
    ) -> BatchOutcome:
        """Score and decide the batch. `with_shadow=False` (synchronous moderation, which has no
        shadow topic) skips the shadow decisions and the candidate model's scoring."""
        classifier = self._classifier
        shadow_classifier = self._shadow_classifier if with_shadow else None
        valid = [v for v in prepared.order if isinstance(v, _Valid)]
        comments = [v.comment for v in valid]
        normalized = [v.normalized for v in valid]
        scored = self._score(classifier, comments, normalized)
        outcome = BatchOutcome(records=[], scoring_failures=scored.count(None))
        scores = iter(scored)
        languages = iter(self._languages(comments))
        shadow_scores = iter(
            self._score(shadow_classifier, comments, normalized)
            if shadow_classifier is not None
            else ()
        )
        errors = iter(error for _, error in prepared.dead)
        state = _BatchState(activity)
        # the file's author lists plus the store's, for this batch's authors
        policy = prepared.policy.with_store_authors(activity.statuses)
        for item in prepared.order:
            if isinstance(item, DeadLetter):
                self._dead_letter(outcome, item.source, next(errors))
                continue
            now = self._clock.now()
            score = next(scores)
            language = next(languages)
            site_policy = policy.for_site(item.comment.site_id)
            context = state.context(item, site_policy, now, language)
            decision = decide(
                item.comment,
                score,
                site_policy,
                context,
                model_version=classifier.version,
                policy_version=policy.version,
            )
            self._publish(
                outcome, item, decision, now, spot_check(decision, site_policy.spot_check)
            )
            shadow_policy = policy.shadow.get(item.comment.site_id) if with_shadow else None
            if shadow_classifier is not None or shadow_policy is not None:
                # a shadow policy for this site, a candidate model for every comment, or both
                shadow_site = shadow_policy or site_policy
                shadow = decide(
                    item.comment,
                    score if shadow_classifier is None else next(shadow_scores),
                    shadow_site,
                    state.context(item, shadow_site, now, language),
                    model_version=(shadow_classifier or classifier).version,
                    policy_version=(policy.shadow_version or policy.version)
                    if shadow_policy is not None
                    else policy.version,
                )
                self._publish_shadow(outcome, item, shadow, now)
            state.saw(item, now)
        return outcome

    def _publish(
        self,
        outcome: BatchOutcome,
        item: _Valid,
        decision: Decision,
        now: datetime,
        spot: Reason | None,
    ) -> None:
        """The decision event as always; a sampled one is also stored as a spot check."""
        c = item.comment
        value = encode_decision(decision, auto_event_id(c.site_id, c.id), now)
        outcome.records.append(
            OutputRecord(self._topics.decisions, decision_key(c.site_id, c.id), value, _JSON)
        )
        outcome.stored.append(stored_comment(item, decision, now, spot_check=spot))
        outcome.actions[decision.action.value] += 1

    def _publish_shadow(
        self, outcome: BatchOutcome, item: _Valid, decision: Decision, now: datetime
    ) -> None:
        c = item.comment
        value = encode_decision(decision, auto_event_id(c.site_id, f"shadow\x1f{c.id}"), now)
        outcome.records.append(
            OutputRecord(self._topics.shadow, decision_key(c.site_id, c.id), value, _JSON)
        )
        outcome.shadow_actions[decision.action.value] += 1

    def _languages(self, comments: Sequence[Comment]) -> list[Language | None]:
        """The event's `lang` where it names a language, else the detector's verdict, for the
        whole batch at once. If detection fails the language is unknown: scored as before."""
        languages = [given_language(c.lang) for c in comments]
        missing = [i for i, language in enumerate(languages) if language is None]
        if self._language_detector is None or not missing:
            return languages
        try:
            detected = self._language_detector.detect([comments[i].text for i in missing])
        except Exception:  # a third-party model: any failure leaves the language unknown
            log.exception("language detection failed; deciding without the language")
            return languages
        if len(detected) != len(missing):
            log.error("language detector returned %d results for %d", len(detected), len(missing))
            return languages
        for i, language in zip(missing, detected, strict=True):
            languages[i] = language
        return languages

    def _score(
        self, classifier: Classifier, comments: Sequence[Comment], normalized: Sequence[str]
    ) -> list[Scores | None]:
        """Score the batch at once; if that fails, one by one, so one comment that breaks
        the model gets the site's failure policy instead of taking its batch down. The texts
        this pipeline normalised go to a classifier that normalises the same way."""
        if not comments:
            return []
        try:
            if (
                isinstance(classifier, PrenormalizedClassifier)
                and classifier.normalizer is self._normalize
            ):
                batch = classifier.score_normalized(comments, normalized)
            else:
                batch = classifier.score(comments)
            if len(batch) == len(comments) and all(_valid_scores(s) for s in batch):
                return list(batch)
        except Exception:
            log.exception("batch scoring failed; scoring one by one")
        return [self._score_one(classifier, comment) for comment in comments]

    def _score_one(self, classifier: Classifier, comment: Comment) -> Scores | None:
        try:
            [scores] = classifier.score([comment])
        except Exception:  # the model is a black box: any failure is this comment's
            log.exception(
                "scoring failed",
                extra={"site_id": comment.site_id, "comment_id": comment.id},
            )
            return None
        if not _valid_scores(scores):
            log.error(
                "model returned invalid scores",
                extra={"site_id": comment.site_id, "comment_id": comment.id},
            )
            return None
        return scores

    def _dead_letter(
        self, outcome: BatchOutcome, record: SourceRecord, error: InvalidComment
    ) -> None:
        value, headers = encode_dead_letter(record, error, self._clock.now())
        outcome.records.append(OutputRecord(self._topics.dead_letter, record.key, value, headers))
        outcome.dead_letters[error.reason.value] += 1
        outcome.dead.append(DeadLetter(record, error.reason.value))


class _BatchState:
    """The store's history plus what this batch has seen so far, in order."""

    def __init__(self, activity: Activity) -> None:
        self._activity = activity
        self._prior: Counter[AuthorKey] = Counter()
        self._recent: defaultdict[AuthorKey, list[datetime]] = defaultdict(list)
        self._texts: defaultdict[str, list[tuple[str, datetime]]] = defaultdict(list)

    def context(
        self, item: _Valid, policy: SitePolicy, now: datetime, language: Language | None
    ) -> DecisionContext:
        key = item.author
        prior: int | None = None
        recent = 1
        if key is not None:
            prior = self._activity.prior.get(key, 0) + self._prior[key]
            if policy.flood is not None:
                since = now - timedelta(seconds=policy.flood.window_seconds)
                times = [*self._activity.recent.get(key, ()), *self._recent[key]]
                recent = 1 + sum(1 for t in times if t >= since)
        authors = {item.campaign_author}
        if policy.campaign is not None and item.text_hash is not None:
            since = now - timedelta(seconds=policy.campaign.window_seconds)
            seen = [*self._activity.texts.get(item.text_hash, ()), *self._texts[item.text_hash]]
            authors |= {author for author, t in seen if t >= since}
        return DecisionContext(
            normalized_text=item.normalized,
            author_prior_comments=prior,
            author_recent_comments=recent,
            campaign_authors=len(authors),
            language=language,
        )

    def saw(self, item: _Valid, now: datetime) -> None:
        key = item.author
        if key is not None:
            self._prior[key] += 1
            self._recent[key].append(now)
        if item.text_hash is not None:
            self._texts[item.text_hash].append((item.campaign_author, now))


def stored_comment(
    item: _Valid, decision: Decision, decided_at: datetime, *, spot_check: Reason | None = None
) -> StoredComment:
    comment = item.comment
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
        event_json=(item.record.value or b"").decode("utf-8"),
        text_hash=item.text_hash,
        campaign_author=item.campaign_author,
        language=decision.language,
        parent_id=comment.parent_id,
        thread_url=comment.thread_url,
        thread_title=comment.thread_title,
        spot_check=spot_check,
    )
