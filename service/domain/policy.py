"""The moderation policy and the one function that applies it: `decide`.

Precedence, first match wins:
  1. reject rules: blocked author, blocked term or pattern, blocked link domain, campaign,
     flood set to reject;
  2. trusted author: approve (the site vouches for them; only step 1 overrides that);
  3. the scores: a label (or an abuse sub-score with a threshold) at or above its `reject_at`
     rejects;
  4. hold rules: held term or pattern, too many links, a first-time author's link, a new
     author's first comments, a flood set to review; and a score between its thresholds;
  5. otherwise approve.
Every reason found is reported, not only the deciding one, so moderators see the whole story.
If scoring failed, the site's `on_scoring_failure` says review (default) or approve, and the
decision says so. A comment in a language the site does not list as supported (the model was
not trained on it, so its scores are noise) gets the site's `languages.on_unsupported`:
review (default) or approve, in place of steps 3 and 4's scores (the rules still apply), or
`score`: decided as any other. A language that could not be told counts as supported.

Authors trusted or blocked by a site's moderators (the review store, `domain/authors.py`) join
the policy file's `authors.trusted` / `authors.blocked` for that site: the effective lists are
the union (`Policy.with_store_authors`, once per batch). Block wins, as in steps 1 and 2: an
author blocked by the file or the store is rejected even if the other trusts them, and a
store "trust" never lifts a file "block" (unblocking in the store lifts only the store's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from service.domain.authors import AuthorStatus, AuthorStatuses
from service.domain.errors import InvalidPolicy
from service.domain.model import (
    Action,
    Comment,
    Decision,
    Label,
    Language,
    Reason,
    ReasonCode,
    Scores,
    SubScore,
)
from service.domain.rules import DecisionContext, NamedPattern, domain_in, link_domains
from service.domain.spot_check import SpotCheckRates

_REJECT_CODE = {
    Label.SPAM: ReasonCode.SPAM_ABOVE_REJECT,
    Label.ABUSE: ReasonCode.ABUSE_ABOVE_REJECT,
}
_REVIEW_CODE = {Label.SPAM: ReasonCode.SPAM_UNCERTAIN, Label.ABUSE: ReasonCode.ABUSE_UNCERTAIN}
_SUB_REJECT_CODE = {
    SubScore.SEVERE_TOXICITY: ReasonCode.SEVERE_TOXICITY_ABOVE_REJECT,
    SubScore.INSULT: ReasonCode.INSULT_ABOVE_REJECT,
    SubScore.THREAT: ReasonCode.THREAT_ABOVE_REJECT,
    SubScore.IDENTITY_ATTACK: ReasonCode.IDENTITY_ATTACK_ABOVE_REJECT,
    SubScore.PROFANITY: ReasonCode.PROFANITY_ABOVE_REJECT,
}
_SUB_REVIEW_CODE = {
    SubScore.SEVERE_TOXICITY: ReasonCode.SEVERE_TOXICITY_UNCERTAIN,
    SubScore.INSULT: ReasonCode.INSULT_UNCERTAIN,
    SubScore.THREAT: ReasonCode.THREAT_UNCERTAIN,
    SubScore.IDENTITY_ATTACK: ReasonCode.IDENTITY_ATTACK_UNCERTAIN,
    SubScore.PROFANITY: ReasonCode.PROFANITY_UNCERTAIN,
}


class RuleAction(StrEnum):
    REVIEW = "review"
    REJECT = "reject"


class FailureMode(StrEnum):
    REVIEW = "review"
    APPROVE = "approve"


class LanguageMode(StrEnum):
    """What a comment in an unsupported language gets."""

    REVIEW = "review"
    APPROVE = "approve"
    SCORE = "score"  # decided by its scores like any other


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Below `approve_below` a label approves; at or above `reject_at` it rejects;
    in between it asks a human."""

    approve_below: float
    reject_at: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.approve_below <= self.reject_at <= 1.0:
            raise InvalidPolicy(
                f"thresholds need 0 <= approve_below <= reject_at <= 1, got "
                f"approve_below={self.approve_below}, reject_at={self.reject_at}"
            )


@dataclass(frozen=True, slots=True)
class SubScoreThresholds:
    """An abuse sub-score's limits, each optional: at or above `reject_at` it rejects; at or
    above `approve_below` (and below `reject_at`) it asks a human. A sub-score the model does
    not give (None) never triggers."""

    approve_below: float | None = None
    reject_at: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("approve_below", self.approve_below), ("reject_at", self.reject_at)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise InvalidPolicy(f"{name} must be from 0 to 1, got {value}")
        if (
            self.approve_below is not None
            and self.reject_at is not None
            and self.approve_below > self.reject_at
        ):
            raise InvalidPolicy(
                f"thresholds need approve_below <= reject_at, got "
                f"approve_below={self.approve_below}, reject_at={self.reject_at}"
            )


@dataclass(frozen=True, slots=True)
class LanguageRules:
    supported: frozenset[str] = frozenset({"en"})  # ISO 639 codes: the model's training ones
    on_unsupported: LanguageMode = LanguageMode.REVIEW

    def unsupported(self, language: Language | None) -> bool:
        """A language known (given, or detected with confidence) and not supported here."""
        return language is not None and language.determined and language.code not in self.supported


@dataclass(frozen=True, slots=True)
class TermRules:
    block: tuple[NamedPattern, ...] = ()
    hold: tuple[NamedPattern, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkRules:
    max_links: int | None = None  # more links than this: review
    block_domains: frozenset[str] = frozenset()
    allow_domains: frozenset[str] = frozenset()  # links here never count or hold
    hold_first_time_author: bool = False


@dataclass(frozen=True, slots=True)
class AuthorRules:
    trusted: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()
    premoderate_first: int = 0  # an author's first N comments on the site go to review


@dataclass(frozen=True, slots=True)
class FloodRule:
    max_comments: int  # more than this many from one author within the window
    window_seconds: float
    action: RuleAction = RuleAction.REVIEW


@dataclass(frozen=True, slots=True)
class CampaignRule:
    min_authors: int  # this many distinct authors posting the same text within the window
    window_seconds: float
    action: RuleAction = RuleAction.REJECT


@dataclass(frozen=True, slots=True)
class SitePolicy:
    spam: Thresholds
    abuse: Thresholds
    terms: TermRules = TermRules()
    links: LinkRules = LinkRules()
    authors: AuthorRules = AuthorRules()
    flood: FloodRule | None = None
    campaign: CampaignRule | None = None
    on_scoring_failure: FailureMode = FailureMode.REVIEW
    sub_scores: Mapping[SubScore, SubScoreThresholds] = field(default_factory=dict)
    languages: LanguageRules = LanguageRules()
    spot_check: SpotCheckRates = field(default_factory=SpotCheckRates)  # off by default

    def thresholds(self, label: Label) -> Thresholds:
        return self.spam if label is Label.SPAM else self.abuse

    def with_authors(self, trusted: frozenset[str], blocked: frozenset[str]) -> SitePolicy:
        """This policy with more trusted and blocked authors (the file's lists kept)."""
        if not trusted and not blocked:
            return self
        rules = self.authors
        return replace(
            self,
            authors=replace(
                rules, trusted=rules.trusted | trusted, blocked=rules.blocked | blocked
            ),
        )


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    default: SitePolicy
    sites: Mapping[str, SitePolicy] = field(default_factory=dict)
    shadow: Mapping[str, SitePolicy] = field(default_factory=dict)  # candidates, per site
    shadow_version: str | None = None

    @classmethod
    def simple(
        cls,
        version: str,
        spam: Thresholds,
        abuse: Thresholds,
        languages: LanguageRules = LanguageRules(),
    ) -> Policy:
        return cls(version, SitePolicy(spam, abuse, languages=languages))

    def for_site(self, site_id: str) -> SitePolicy:
        return self.sites.get(site_id, self.default)

    def with_store_authors(self, statuses: AuthorStatuses) -> Policy:
        """The effective policy: each site's file lists plus the store's statuses of its
        authors (live and shadow alike; a site without its own section gets the defaults').
        The version stays the file's."""
        lists: dict[str, tuple[set[str], set[str]]] = {}
        for (site, author), status in statuses.items():
            trusted, blocked = lists.setdefault(site, (set(), set()))
            (blocked if status is AuthorStatus.BLOCKED else trusted).add(author)
        if not lists:
            return self
        sites, shadow = dict(self.sites), dict(self.shadow)
        for site, (trusted, blocked) in lists.items():
            sites[site] = self.for_site(site).with_authors(frozenset(trusted), frozenset(blocked))
            if site in shadow:
                shadow[site] = shadow[site].with_authors(frozenset(trusted), frozenset(blocked))
        return replace(self, sites=sites, shadow=shadow)

    def needs_author_history(self) -> bool:
        """Whether any site's rules look at an author's past comments."""
        every = [self.default, *self.sites.values(), *self.shadow.values()]
        return any(
            p.authors.premoderate_first > 0 or p.links.hold_first_time_author or p.flood
            for p in every
        )

    def windows(self) -> tuple[float, float]:
        """The longest flood and campaign windows of any site (what the state must cover)."""
        every = [self.default, *self.sites.values(), *self.shadow.values()]
        flood = max((p.flood.window_seconds for p in every if p.flood), default=0.0)
        campaign = max((p.campaign.window_seconds for p in every if p.campaign), default=0.0)
        return flood, campaign


@dataclass
class _Found:
    rejects: list[Reason] = field(default_factory=list)
    holds: list[Reason] = field(default_factory=list)

    def add(self, action: RuleAction, reason: Reason) -> None:
        (self.rejects if action is RuleAction.REJECT else self.holds).append(reason)


def decide(
    comment: Comment,
    scores: Scores | None,
    policy: SitePolicy,
    context: DecisionContext,
    *,
    model_version: str,
    policy_version: str,
) -> Decision:
    """Apply the site's policy to one comment. `scores` is None when scoring failed."""
    found = _Found()
    author = comment.author.id
    if author is not None and author in policy.authors.blocked:
        found.add(
            RuleAction.REJECT, Reason(ReasonCode.BLOCKED_AUTHOR, f"author {author} is blocked")
        )
    _terms(policy.terms, context.normalized_text, found)
    _links(policy.links, comment.text, context, found)
    _activity(policy, context, found)
    trusted = author is not None and author in policy.authors.trusted
    unsupported = _unsupported_language(policy.languages, context.language)
    # in a language the model does not know, its scores say nothing: they are not used
    score_reasons = _Found() if scores is None or unsupported else _scores(scores, policy)

    if found.rejects:
        action = Action.REJECT
        reasons = found.rejects + score_reasons.rejects + unsupported
        reasons += found.holds + score_reasons.holds
    elif trusted:
        action = Action.APPROVE
        reasons = [Reason(ReasonCode.TRUSTED_AUTHOR, f"author {author} is trusted")]
    elif unsupported:
        mode = policy.languages.on_unsupported
        action = Action.REVIEW if found.holds or mode is LanguageMode.REVIEW else Action.APPROVE
        reasons = unsupported + found.holds
    elif scores is None:
        action = (
            Action.APPROVE if policy.on_scoring_failure is FailureMode.APPROVE else Action.REVIEW
        )
        reasons = [
            Reason(
                ReasonCode.SCORING_FAILED,
                f"the model could not score this comment; the site's policy is to "
                f"{policy.on_scoring_failure.value}",
            ),
            *found.holds,
        ]
        if found.holds:
            action = Action.REVIEW
    elif score_reasons.rejects:
        action = Action.REJECT
        reasons = score_reasons.rejects + found.holds + score_reasons.holds
    elif found.holds or score_reasons.holds:
        action = Action.REVIEW
        reasons = found.holds + score_reasons.holds
    else:
        action = Action.APPROVE
        reasons = [
            Reason(
                ReasonCode.BELOW_THRESHOLDS,
                f"spam {scores.spam:.3f} < {policy.spam.approve_below:.3f} and "
                f"abuse {scores.abuse:.3f} < {policy.abuse.approve_below:.3f}",
            )
        ]
    return Decision(
        comment_id=comment.id,
        site_id=comment.site_id,
        action=action,
        scores=scores or Scores(spam=0.0, abuse=0.0),
        reasons=tuple(reasons),
        model_version=model_version,
        policy_version=policy_version,
        language=context.language,
    )


def _unsupported_language(rules: LanguageRules, language: Language | None) -> list[Reason]:
    """The unsupported-language reason, if the site's policy acts on it (not `score`)."""
    if language is None or not rules.unsupported(language):
        return []
    if rules.on_unsupported is LanguageMode.SCORE:
        return []
    how = (
        "given by the event"
        if not language.detected
        else "detected"
        if language.confidence is None
        else f"detected, confidence {language.confidence:.2f}"
    )
    return [
        Reason(
            ReasonCode.UNSUPPORTED_LANGUAGE,
            f"language {language.code} ({how}) is not supported here "
            f"(supported: {', '.join(sorted(rules.supported)) or 'none'}); the model's scores "
            f"are not used and the site's policy is to {rules.on_unsupported.value}",
        )
    ]


_LABELS: Final = tuple(Label)  # iterating an enum class costs more than a tuple
_SUB_SCORES: Final = tuple(SubScore)


def _scores(scores: Scores, policy: SitePolicy) -> _Found:
    found = _Found()
    for label in _LABELS:
        score = scores.of(label)
        limits = policy.thresholds(label)
        if score >= limits.reject_at:
            found.rejects.append(
                Reason(
                    _REJECT_CODE[label],
                    f"{label} score {score:.3f} >= reject threshold {limits.reject_at:.3f}",
                )
            )
        elif score >= limits.approve_below:
            found.holds.append(
                Reason(
                    _REVIEW_CODE[label],
                    f"{label} score {score:.3f} between approve threshold "
                    f"{limits.approve_below:.3f} and reject threshold {limits.reject_at:.3f}",
                )
            )
    for name in _SUB_SCORES:
        sub = policy.sub_scores.get(name)
        if sub is None:  # no threshold
            continue
        value = scores.sub(name)
        if value is None:  # the model has no such score
            continue
        if sub.reject_at is not None and value >= sub.reject_at:
            found.rejects.append(
                Reason(
                    _SUB_REJECT_CODE[name],
                    f"{name} score {value:.3f} >= reject threshold {sub.reject_at:.3f}",
                )
            )
        elif sub.approve_below is not None and value >= sub.approve_below:
            detail = f"{name} score {value:.3f} >= approve threshold {sub.approve_below:.3f}"
            if sub.reject_at is not None:
                detail += f" and < reject threshold {sub.reject_at:.3f}"
            found.holds.append(Reason(_SUB_REVIEW_CODE[name], detail))
    return found


def _terms(rules: TermRules, normalized: str, found: _Found) -> None:
    for term in rules.block:
        if term.found_in(normalized):
            found.add(
                RuleAction.REJECT, Reason(ReasonCode.BLOCKED_TERM, f"blocked term {term.label!r}")
            )
    for term in rules.hold:
        if term.found_in(normalized):
            found.add(RuleAction.REVIEW, Reason(ReasonCode.HELD_TERM, f"held term {term.label!r}"))


def _links(rules: LinkRules, text: str, context: DecisionContext, found: _Found) -> None:
    if not rules.block_domains and rules.max_links is None and not rules.hold_first_time_author:
        return  # no link rule: the links need not be found
    hosts = [h for h in link_domains(text) if domain_in(h, rules.allow_domains) is None]
    for host in hosts:
        blocked = domain_in(host, rules.block_domains)
        if blocked is not None:
            found.add(
                RuleAction.REJECT,
                Reason(ReasonCode.BLOCKED_DOMAIN, f"link to {host} (blocked domain {blocked})"),
            )
    if rules.max_links is not None and len(hosts) > rules.max_links:
        found.add(
            RuleAction.REVIEW,
            Reason(ReasonCode.TOO_MANY_LINKS, f"{len(hosts)} links, more than {rules.max_links}"),
        )
    if hosts and rules.hold_first_time_author and context.author_prior_comments in (0, None):
        who = "a first-time author" if context.author_prior_comments == 0 else "an anonymous author"
        found.add(
            RuleAction.REVIEW,
            Reason(ReasonCode.FIRST_TIME_AUTHOR_LINK, f"link from {who}: {hosts[0]}"),
        )


def _activity(policy: SitePolicy, context: DecisionContext, found: _Found) -> None:
    prior = context.author_prior_comments
    if (
        policy.authors.premoderate_first
        and prior is not None
        and prior < policy.authors.premoderate_first
    ):
        found.add(
            RuleAction.REVIEW,
            Reason(
                ReasonCode.NEW_AUTHOR,
                f"comment {prior + 1} of the author's first "
                f"{policy.authors.premoderate_first}, which are premoderated",
            ),
        )
    flood = policy.flood
    if flood is not None and context.author_recent_comments > flood.max_comments:
        found.add(
            flood.action,
            Reason(
                ReasonCode.FLOOD,
                f"{context.author_recent_comments} comments from this author within "
                f"{flood.window_seconds:g} s (limit {flood.max_comments})",
            ),
        )
    campaign = policy.campaign
    if campaign is not None and context.campaign_authors >= campaign.min_authors:
        found.add(
            campaign.action,
            Reason(
                ReasonCode.CAMPAIGN,
                f"the same text from {context.campaign_authors} authors within "
                f"{campaign.window_seconds:g} s (limit {campaign.min_authors})",
            ),
        )
