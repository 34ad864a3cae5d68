"""The store's trusted and blocked authors join the policy file's lists: the merge, the
precedence (block wins, whoever set it), and the pipeline reading them once per batch."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from service.contracts.codec import Limits, SourceRecord
from service.domain.authors import AuthorStatus, AuthorStatuses
from service.domain.model import Action, Author, Comment, ReasonCode, Scores
from service.domain.policy import AuthorRules, Policy, SitePolicy, Thresholds, decide
from service.domain.review import Activity
from service.domain.rules import DecisionContext
from service.usecases.pipeline import Pipeline, Topics
from tests.fakes import FixedClock, KeywordClassifier

BLOCKED, TRUSTED = AuthorStatus.BLOCKED, AuthorStatus.TRUSTED
DEFAULT = SitePolicy(
    Thresholds(0.5, 0.9),
    Thresholds(0.5, 0.9),
    authors=AuthorRules(trusted=frozenset({"file-trusted"}), blocked=frozenset({"file-blocked"})),
)
HERALD = replace(DEFAULT, authors=AuthorRules(blocked=frozenset({"herald-file-blocked"})))
POLICY = Policy("file-7", DEFAULT, sites={"herald": HERALD}, shadow={"herald": HERALD})
SPAMMY = Scores(spam=0.99, abuse=0.01)
CLEAN = Scores(spam=0.01, abuse=0.01)


def decided(policy: Policy, site: str, author: str, scores: Scores = CLEAN) -> tuple[Action, str]:
    comment = Comment(id="c", site_id=site, text="hello", author=Author(id=author))
    decision = decide(
        comment,
        scores,
        policy.for_site(site),
        DecisionContext(normalized_text="hello"),
        model_version="m",
        policy_version=policy.version,
    )
    return decision.action, decision.reasons[0].code.value


def test_no_store_statuses_leave_the_policy_as_it_is() -> None:
    assert POLICY.with_store_authors({}) is POLICY


def test_the_effective_lists_are_the_files_and_the_stores_for_that_site() -> None:
    statuses: AuthorStatuses = {("herald", "ann"): BLOCKED, ("herald", "bob"): TRUSTED}

    merged = POLICY.with_store_authors(statuses).for_site("herald")

    assert merged.authors.blocked == {"herald-file-blocked", "ann"}
    assert merged.authors.trusted == {"bob"}
    assert merged.spam == HERALD.spam  # nothing else changes


def test_a_site_without_its_own_section_gets_the_defaults_plus_the_store() -> None:
    merged = POLICY.with_store_authors({("gazette", "ann"): BLOCKED})

    gazette = merged.for_site("gazette")
    assert gazette.authors.blocked == {"file-blocked", "ann"}
    assert gazette.authors.trusted == {"file-trusted"}
    # the default and the other sites are untouched: a status is per site
    assert merged.default == DEFAULT
    assert merged.for_site("herald") == HERALD
    assert merged.for_site("tech-blog").authors.blocked == {"file-blocked"}
    assert merged.version == "file-7"


def test_the_shadow_policy_of_the_site_gets_the_store_lists_too() -> None:
    merged = POLICY.with_store_authors({("herald", "ann"): BLOCKED})

    assert "ann" in merged.shadow["herald"].authors.blocked
    assert "gazette" not in merged.shadow


@pytest.mark.parametrize(
    ("site", "author", "status", "expected"),
    [
        # the store blocks: rejected, even an author the file trusts
        ("herald", "ann", BLOCKED, (Action.REJECT, "blocked_author")),
        ("gazette", "file-trusted", BLOCKED, (Action.REJECT, "blocked_author")),
        # the store trusts: approved, even with a spammy score...
        ("herald", "ann", TRUSTED, (Action.APPROVE, "trusted_author")),
        # ...but never an author the file blocks: block wins
        ("herald", "herald-file-blocked", TRUSTED, (Action.REJECT, "blocked_author")),
        ("gazette", "file-blocked", TRUSTED, (Action.REJECT, "blocked_author")),
    ],
)
def test_block_wins_whoever_set_it(
    site: str, author: str, status: AuthorStatus, expected: tuple[Action, str]
) -> None:
    merged = POLICY.with_store_authors({(site, author): status})

    assert decided(merged, site, author, SPAMMY) == expected


def test_a_status_on_one_site_does_not_reach_another() -> None:
    merged = POLICY.with_store_authors({("herald", "ann"): BLOCKED})

    assert decided(merged, "gazette", "ann") == (Action.APPROVE, ReasonCode.BELOW_THRESHOLDS.value)


# --- the pipeline: asked once per batch, applied to that batch --------------------------


def record(offset: int, cid: str, author: str | None, site: str = "herald") -> SourceRecord:
    doc: dict[str, Any] = {"id": cid, "site_id": site, "text": "buy now"}
    if author is not None:
        doc["author"] = {"id": author}
    return SourceRecord("in", 0, offset, 1_700_000_000_000, None, json.dumps(doc).encode())


def pipeline() -> Pipeline:
    return Pipeline(KeywordClassifier(), POLICY, FixedClock(), Topics(), Limits())


def test_every_named_author_of_a_batch_is_asked_about_even_when_no_rule_reads_history() -> None:
    events = [record(0, "a", "ann"), record(1, "b", "ann"), record(2, "c", None)]

    query = pipeline().prepare(events).query(FixedClock().now())

    assert query.statuses == (("herald", "ann"),)
    assert query.authors == ()  # no flood, campaign or new-author rule here


def test_the_batch_is_decided_with_the_store_statuses_it_read() -> None:
    pipe = pipeline()
    events = [record(0, "a", "ann"), record(1, "b", "bob"), record(2, "c", "cid")]
    prepared = pipe.prepare(events)

    outcome = pipe.finish(
        prepared, Activity(statuses={("herald", "ann"): BLOCKED, ("herald", "bob"): TRUSTED})
    )

    decisions = [json.loads(r.value) for r in outcome.records if r.topic == "comment-decisions"]
    assert [(d["comment_id"], d["action"], d["reasons"][0]["code"]) for d in decisions] == [
        ("a", "reject", "blocked_author"),
        ("b", "approve", "trusted_author"),
        ("c", "reject", "spam_above_reject_threshold"),
    ]
    assert {d["policy_version"] for d in decisions} == {"file-7"}
    # the next batch reads afresh: a lifted block no longer applies
    again = pipe.finish(pipe.prepare([record(3, "d", "ann")]), Activity())
    assert json.loads(again.records[0].value)["reasons"][0]["code"] != "blocked_author"
