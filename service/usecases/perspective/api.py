"""The Perspective-compatible API's use cases: score a comment (`comments:analyze`) and learn
from a client's correction (`comments:suggestscore`).

- **Keys** are our `site` tokens. A key for one site scores for that site; a key for several
  takes the site from `communityId`. Each key has its own rate limit.
- **`doNotStore: true`**: the text is scored by the live model and answered; it is never
  written to the store, a topic or the log (the request is counted in the metrics, without
  it). **Otherwise** the comment is moderated like `POST /api/v1/moderate` (stored, decided,
  the decision published), its id derived from `clientToken`, else from the text, so that
  asking again gets the first decision's scores.
- **`suggestscore`** writes a human label for the key's site to the label store.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Final, TypeVar

from service.domain.access import Identity, Role, valid_site_id
from service.domain.errors import InvalidComment
from service.domain.feedback import LabelledExample, ReasonSource, TrainingLabel, overturned
from service.domain.language import given_language
from service.domain.model import Action, Comment, Language, ReasonCode, Scores
from service.domain.policy import LanguageMode, LanguageRules
from service.usecases.perspective.protocol import (
    AnalyzeAnswer,
    AnalyzeRequest,
    Attribute,
    ErrorKind,
    PerspectiveError,
    Span,
    analyze_answer,
    invalid,
    parse_analyze,
    parse_suggestion,
    suggestion_answer,
)
from service.usecases.perspective.spans import sentences, utf16_offsets
from service.usecases.ports import (
    Authenticator,
    Clock,
    DecisionLog,
    LanguageDetector,
    LearningStore,
    PerspectiveMetrics,
)
from service.usecases.rate_limit import RateLimiter
from service.usecases.sync_moderation import DecisionPending, ScoringFailed, SyncModerator

T = TypeVar("T")
log = logging.getLogger(__name__)
# Clients that send one configured attribute (TOXICITY) for every decision, whatever the
# moderator's reason, known by their communityId: Coral sends `Coral:<tenant URL>`.
_FIXED_ATTRIBUTE_CLIENTS: Final = ("Coral:",)
_BAD_FROM: Final = 0.5  # a suggested score at or above this says the comment is bad


@dataclass(frozen=True, slots=True)
class PerspectiveConfig:
    max_text_chars: int = 20_000
    budget_seconds: float = 0.5  # the answer comes within it, or a DEADLINE_EXCEEDED


def comment_id(client_token: str | None, text: str) -> str:
    """The id a stored call's comment gets: from the client's token and its text, else from its
    text alone. Perspective's `clientToken` is only echoed there, so clients reuse one (a
    session's, or a comment's across its edits): a new text under a known token is a new
    comment, decided anew, and the same request again is the same one."""
    if client_token is None:
        kind, value = "text", text
    else:
        kind, value = "token", f"{len(client_token)}:{client_token}{text}"
    return f"perspective-{kind}-{hashlib.sha256(value.encode()).hexdigest()[:32]}"


def suggested_label(scores: Sequence[tuple[Attribute, float]]) -> TrainingLabel:
    """`ok` if every suggested score is below 0.5; otherwise the kind (spam or abuse) of the
    highest one, abuse on a tie."""
    bad = [(value, attribute is not Attribute.SPAM) for attribute, value in scores]
    bad = [b for b in bad if b[0] >= _BAD_FROM]
    if not bad:
        return TrainingLabel.OK
    _, abuse = max(bad)
    return TrainingLabel.ABUSE if abuse else TrainingLabel.SPAM


def label_source(label: TrainingLabel, community_id: str | None) -> ReasonSource:
    """A client's word is a human's reason, except a rejection from a client that names the
    same attribute for every rejection (Coral): that says rejected, not why."""
    fixed = community_id is not None and community_id.startswith(_FIXED_ATTRIBUTE_CLIENTS)
    if fixed and label is not TrainingLabel.OK:
        return ReasonSource.GUESSED
    return ReasonSource.MODERATOR


@dataclass(frozen=True, slots=True)
class _Languages:
    code: str | None  # the language the comment is scored as, if known
    given: bool  # the client named it (else detected, or unknown)
    answered: list[str]  # the answer's `languages`
    detected: list[str]  # the answer's `detectedLanguages`


class PerspectiveApi:
    def __init__(
        self,
        tokens: Authenticator,
        moderator: SyncModerator,
        store: DecisionLog,
        labels: LearningStore,
        *,
        clock: Clock,
        limiter: RateLimiter,
        metrics: PerspectiveMetrics,
        config: PerspectiveConfig,
        detector: LanguageDetector | None = None,
        executor: Executor | None = None,  # for the detector; None: the loop's default
    ) -> None:
        self._tokens = tokens
        self._moderator = moderator
        self._store = store
        self._labels = labels
        self._clock = clock
        self._limiter = limiter
        self._metrics = metrics
        self._config = config
        self._detector = detector
        self._executor = executor

    async def analyze(self, key: str | None, raw: bytes) -> AnalyzeAnswer:
        return await self._counted("analyze", self._analyze(key, raw))

    async def suggest(self, key: str | None, raw: bytes) -> dict[str, object]:
        return await self._counted("suggestscore", self._suggest(key, raw))

    async def _counted(self, method: str, work: Awaitable[T]) -> T:
        started = time.perf_counter()
        outcome = "internal"
        try:
            result = await work
        except PerspectiveError as exc:
            outcome = exc.kind.value.lower()
            raise
        else:
            outcome = "ok"
            return result
        finally:
            self._metrics.perspective_request(method, outcome, time.perf_counter() - started)

    def _caller(self, key: str | None) -> Identity:
        if not key:
            raise PerspectiveError(
                ErrorKind.PERMISSION_DENIED, "The request is missing a valid API key."
            )
        identity = self._tokens.authenticate(key)
        if identity is None:
            raise invalid("API key not valid. Please pass a valid API key.")
        if identity.role is not Role.SITE:
            raise PerspectiveError(
                ErrorKind.PERMISSION_DENIED,
                "This API key is not a site key (moderation tokens add --role site).",
            )
        wait = self._limiter.take(identity.id)
        if wait > 0:
            raise PerspectiveError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"Quota exceeded for this API key: {self._limiter.rate:g} requests per second.",
                retry_after=wait,
            )
        return identity

    @staticmethod
    def _site(identity: Identity, community_id: str | None) -> str:
        sites = identity.sites
        if sites is not None and len(sites) == 1:
            return next(iter(sites))  # communityId is the client's business then
        if community_id is None:
            raise invalid("This API key serves several sites: communityId must name one.")
        if not valid_site_id(community_id) or not identity.can_see(community_id):
            raise PerspectiveError(
                ErrorKind.PERMISSION_DENIED,
                f"This API key may not be used for communityId {json.dumps(community_id[:64])}.",
            )
        return community_id

    async def _languages(
        self,
        site: str,
        requested: Sequence[str],
        text: str,
        attribute: Attribute,
        deadline: float,
    ) -> _Languages:
        """Perspective's rule: the languages asked for, else the detected one; an error if
        none of them is one the site's model is for (unless the site scores every language).
        A language the detector cannot tell is scored, as the policy does."""
        rules = self._moderator.policy.for_site(site).languages
        detected = await self._detect(text, deadline)
        told = [detected.code] if detected is not None and detected.determined else []
        if requested:
            codes = [language.code for tag in requested if (language := given_language(tag))]
            usable = [code for code in codes if _supported(rules, code)]
            if not usable:
                raise invalid(
                    f"Attribute {attribute.value} does not support request languages: "
                    f"{','.join(codes)}"
                )
            return _Languages(usable[0], True, list(requested), told)
        if not told:
            return _Languages(None, False, [], [])
        if not _supported(rules, told[0]):
            raise invalid(
                f"Attribute {attribute.value} does not support request languages: {told[0]}"
            )
        return _Languages(told[0], False, told, told)

    async def _detect(self, text: str, deadline: float) -> Language | None:
        """The detector's verdict, off the event loop; None without a detector, or if it
        fails (then the language is unknown, as in the pipeline)."""
        if self._detector is None:
            return None
        work = asyncio.get_running_loop().run_in_executor(
            self._executor, self._detector.detect, [text]
        )
        try:
            [found] = await asyncio.wait_for(work, timeout=_left(deadline))
        except TimeoutError:
            raise PerspectiveError(
                ErrorKind.DEADLINE_EXCEEDED, "The comment was not scored within the latency budget."
            ) from None
        except Exception as exc:  # a third-party model; its message may quote the text
            log.error("language detection failed", extra={"error": type(exc).__name__})  # noqa: TRY400
            return None
        return found

    async def _analyze(self, key: str | None, raw: bytes) -> AnalyzeAnswer:
        deadline = time.monotonic() + self._config.budget_seconds
        identity = self._caller(key)
        request = parse_analyze(raw, self._config.max_text_chars)
        site = self._site(identity, request.community_id)
        text = request.comment.text
        attribute = request.attributes[0].attribute
        languages = await self._languages(site, request.languages, text, attribute, deadline)
        comment = Comment(id="perspective", site_id=site, text=text, lang=languages.code)
        bounds = sentences(text) if request.span_annotations and not request.comment.html else []
        pieces = [
            Comment(id="perspective", site_id=site, text=text[b:e], lang=languages.code)
            for b, e in bounds
        ]
        try:
            if request.do_not_store:
                summary, *parts = await self._moderator.score([comment, *pieces], _left(deadline))
            else:
                given = languages.code if languages.given else None  # else the pipeline's own
                summary = await self._moderate(site, request, given, deadline)
                parts = await self._moderator.score(pieces, _left(deadline)) if pieces else []
        except DecisionPending:
            raise PerspectiveError(
                ErrorKind.DEADLINE_EXCEEDED,
                "The comment was not scored within the latency budget."
                + ("" if request.do_not_store else " Its decision is still made: ask again."),
            ) from None
        except ScoringFailed:
            raise PerspectiveError(
                ErrorKind.INTERNAL, "The model could not score this comment."
            ) from None
        offsets = utf16_offsets(text, [o for b, e in bounds for o in (b, e)])
        spans: list[Span] = [
            (offsets[2 * n], offsets[2 * n + 1], scores) for n, scores in enumerate(parts)
        ]
        return analyze_answer(
            request, summary, spans, languages=languages.answered, detected=languages.detected
        )

    async def _moderate(
        self, site: str, request: AnalyzeRequest, lang: str | None, deadline: float
    ) -> Scores:
        """Moderate the comment like `POST /api/v1/moderate`; its decision's scores."""
        event: dict[str, object] = {
            "id": comment_id(request.client_token, request.comment.text),
            "site_id": site,
            "text": request.comment.text,
            "perspective": {
                "client_token": request.client_token,
                "community_id": request.community_id,
            },
        }
        if lang is not None:
            event["lang"] = lang
        try:
            result = await self._moderator.moderate(json.dumps(event).encode(), _left(deadline))
        except InvalidComment as exc:
            raise invalid(f"{exc.reason.value}: {exc.detail}") from None
        if any(r.code is ReasonCode.SCORING_FAILED for r in result.decision.reasons):
            raise ScoringFailed
        return result.decision.scores

    async def _suggest(self, key: str | None, raw: bytes) -> dict[str, object]:
        deadline = time.monotonic() + self._config.budget_seconds
        identity = self._caller(key)
        suggestion = parse_suggestion(raw, self._config.max_text_chars)
        site = self._site(identity, suggestion.community_id)
        text = suggestion.comment.text
        attribute = suggestion.scores[0][0]
        languages = await self._languages(site, suggestion.languages, text, attribute, deadline)
        label = suggested_label(suggestion.scores)
        final = Action.APPROVE if label is TrainingLabel.OK else Action.REJECT
        # the comment an earlier stored analyze made (by the token's id, else the text's),
        # whose automatic decision the label may overturn; none: `review`, not decided by us
        by_token, by_text = comment_id(suggestion.client_token, text), comment_id(None, text)
        candidates = list(dict.fromkeys([by_token, by_text]))
        found, auto = candidates[0], Action.REVIEW
        for candidate in candidates:
            earlier = await self._store.auto_decision(site, candidate)
            if earlier is not None:
                found, auto = candidate, earlier.decision.action
                break
        await self._labels.add_label(
            LabelledExample(
                site_id=site,
                comment_id=found,
                text=text,
                label=label,
                auto_action=auto,
                final_action=final,
                overturned=overturned(auto, final),
                labelled_by=f"perspective:{identity.id}",
                labelled_at=self._clock.now(),
                reason_source=label_source(label, suggestion.community_id),
            )
        )
        return suggestion_answer(suggestion, detected=languages.detected)


def _supported(rules: LanguageRules, code: str) -> bool:
    return rules.on_unsupported is LanguageMode.SCORE or not rules.unsupported(
        Language(code, detected=False)
    )


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
