from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from classifier import normalize
from service.adapters.policy_file import (
    PolicyFileError,
    compile_policy,
    describe_change,
    read_policy,
)
from service.domain.model import SubScore
from service.domain.policy import (
    FailureMode,
    LanguageMode,
    LanguageRules,
    Policy,
    RuleAction,
    SitePolicy,
    SubScoreThresholds,
    Thresholds,
)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "deploy" / "policy" / "policy.example.toml"
BASE = SitePolicy(Thresholds(0.5, 0.9), Thresholds(0.5, 0.9))


def compile_text(text: str, base: SitePolicy = BASE) -> Policy:
    return compile_policy(tomllib.loads(text), normalize, base, source="test")


def test_the_example_file_loads_with_its_overrides_and_shadow() -> None:
    policy, raw = read_policy(EXAMPLE, normalize, BASE)

    assert policy.version == raw["version"] == "example-1"
    assert policy.default.abuse.reject_at == 0.9
    assert policy.for_site("daily-herald").abuse.reject_at == 0.8
    assert policy.for_site("daily-herald").spam == policy.default.spam  # merged over defaults
    assert policy.for_site("tech-blog").authors.premoderate_first == 2
    assert policy.for_site("tech-blog").flood == policy.default.flood
    assert policy.default.flood is not None
    assert policy.default.flood.action is RuleAction.REVIEW
    assert policy.default.campaign is not None
    assert policy.default.campaign.min_authors == 3
    assert policy.default.on_scoring_failure is FailureMode.REVIEW
    assert policy.shadow_version == "candidate-2"
    # the shadow candidate starts from that site's live policy
    assert policy.shadow["daily-herald"].abuse.reject_at == 0.7
    assert policy.shadow["daily-herald"].links == policy.for_site("daily-herald").links
    assert dict(policy.default.sub_scores) == {
        SubScore.THREAT: SubScoreThresholds(reject_at=0.8),
        SubScore.INSULT: SubScoreThresholds(approve_below=0.7),
    }
    assert policy.default.languages == LanguageRules(frozenset({"en"}), LanguageMode.REVIEW)
    assert policy.for_site("tech-blog").languages.on_unsupported is LanguageMode.APPROVE
    assert policy.for_site("tech-blog").languages.supported == frozenset({"en"})


def test_sub_score_thresholds_and_languages_merge_per_site_over_the_defaults() -> None:
    policy = compile_text(
        'version = "v"\n'
        "[defaults.thresholds]\n"
        "threat = { reject_at = 0.8 }\n"
        "[defaults.languages]\n"
        'supported = ["en", "FR"]\n'
        "[sites.herald.thresholds]\n"
        "threat = { approve_below = 0.5 }\n"
        "profanity = { approve_below = 0.6, reject_at = 0.9 }\n"
        "[sites.herald.languages]\n"
        'on_unsupported = "score"\n'
    )

    assert dict(policy.default.sub_scores) == {SubScore.THREAT: SubScoreThresholds(None, 0.8)}
    assert policy.default.languages.supported == frozenset({"en", "fr"})
    herald = policy.for_site("herald")
    assert dict(herald.sub_scores) == {
        SubScore.THREAT: SubScoreThresholds(0.5, 0.8),
        SubScore.PROFANITY: SubScoreThresholds(0.6, 0.9),
    }
    assert herald.languages == LanguageRules(frozenset({"en", "fr"}), LanguageMode.SCORE)


def test_languages_the_file_leaves_out_come_from_the_base() -> None:
    base = SitePolicy(
        Thresholds(0.5, 0.9),
        Thresholds(0.5, 0.9),
        languages=LanguageRules(frozenset({"de"}), LanguageMode.APPROVE),
    )
    policy = compile_text('version = "v"\n', base)

    assert policy.default.languages == base.languages
    assert policy.default.sub_scores == {}


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("you are an idiot", True),
        ("you are an 1d10t", True),  # leetspeak
        ("you are an i d i o t", True),  # spaced out
        ("you are an IDIOOOOT", True),  # elongated, upper case
        ("idiotic remarks", False),  # whole words only
    ],
)
def test_terms_match_after_normalisation_and_whole_words_only(text: str, found: bool) -> None:
    policy, _ = read_policy(EXAMPLE, normalize, BASE)
    [idiot] = [t for t in policy.default.terms.hold if t.label == "idiot"]

    assert idiot.found_in(normalize(text)) is found


def test_patterns_are_linear_time_re2() -> None:
    policy = compile_text('version = "v"\n[defaults.terms]\nblock_patterns = ["(a+)+b"]\n')
    [pattern] = policy.default.terms.block

    # a backtracking engine takes forever on this; RE2 answers at once
    assert not pattern.found_in("a" * 100_000 + "c")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "version: required"),
        ('version = "v"\nthreshold = 1', "threshold: unknown key"),
        (
            'version = "v"\n[defaults]\nthresholds.spam.rejectat = 0.5',
            "defaults.thresholds.spam.rejectat: unknown key",
        ),
        (
            'version = "v"\n[defaults]\nthresholds.spam.reject_at = 1.5',
            "defaults.thresholds.spam.reject_at: must be a number from 0 to 1",
        ),
        (
            'version = "v"\n[sites.x]\nthresholds.abuse = {approve_below = 0.9, reject_at = 0.2}',
            "sites.x.thresholds.abuse: thresholds need",
        ),
        (
            'version = "v"\n[defaults]\nflood = {max_comments = "5"}',
            "defaults.flood.max_comments: must be a whole number",
        ),
        (
            'version = "v"\n[defaults]\nflood = {action = "ban"}',
            "defaults.flood.action: must be one of 'review', 'reject'",
        ),
        (
            'version = "v"\n[defaults]\non_scoring_failure = "panic"',
            "defaults.on_scoring_failure: must be one of",
        ),
        (
            'version = "v"\n[defaults.terms]\nblock = "spam"',
            "defaults.terms.block: must be a list of non-empty strings",
        ),
        (
            'version = "v"\n[defaults.terms]\nblock_patterns = ["(unclosed"]',
            "defaults.terms.block_patterns[0]: not a valid RE2 pattern",
        ),
        (
            'version = "v"\n[defaults.terms]\nhold_patterns = ["(a)\\\\1"]',
            "defaults.terms.hold_patterns[0]: not a valid RE2 pattern",
        ),
        ('version = "v"\n[defaults.terms]\nhold = ["<b></b>"]', "normalises to nothing"),
        (
            'version = "v"\n[defaults.links]\nmax_links = true',
            "defaults.links.max_links: must be a whole number",
        ),
        (
            'version = "v"\n[shadow.sites.x]\nthresholds.spam.reject_at = 0.5',
            "shadow.version: required",
        ),
        ('version = "v"\nsites = 3', "sites: must be a table"),
        (
            'version = "v"\n[defaults]\nthresholds.threat.reject = 0.5',
            "defaults.thresholds.threat.reject: unknown key",
        ),
        (
            'version = "v"\n[defaults]\nthresholds.toxicity.reject_at = 0.5',
            "defaults.thresholds.toxicity: unknown key",
        ),
        (
            'version = "v"\n[defaults]\nthresholds.insult.reject_at = 2',
            "defaults.thresholds.insult.reject_at: must be a number from 0 to 1",
        ),
        (
            'version = "v"\n[sites.x]\nthresholds.threat = {approve_below = 0.9, reject_at = 0.2}',
            "sites.x.thresholds.threat: thresholds need approve_below <= reject_at",
        ),
        (
            'version = "v"\n[defaults]\nthresholds.threat = 0.8',
            "defaults.thresholds.threat: must be a table",
        ),
        (
            'version = "v"\n[defaults]\nlanguages = {on_unsupported = "drop"}',
            "defaults.languages.on_unsupported: must be one of 'review', 'approve', 'score'",
        ),
        (
            'version = "v"\n[defaults]\nlanguages = {supported = ["english"]}',
            "defaults.languages.supported: must list ISO 639 language codes",
        ),
        (
            'version = "v"\n[defaults]\nlanguages = {supported = []}',
            "defaults.languages.supported: must list ISO 639 language codes",
        ),
        (
            'version = "v"\n[defaults]\nlanguages = {supported = "en"}',
            "defaults.languages.supported: must be a list of non-empty strings",
        ),
        (
            'version = "v"\n[defaults]\nlanguages = {detect = true}',
            "defaults.languages.detect: unknown key",
        ),
    ],
)
def test_a_bad_key_or_value_is_named(text: str, problem: str) -> None:
    with pytest.raises(PolicyFileError) as caught:
        compile_text(text)

    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(PolicyFileError) as caught:
        compile_text('version = ""\n[defaults]\nflood = {max_comments = 0}\nnope = 1\n')

    assert len(caught.value.problems) == 3


def test_unreadable_and_malformed_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot read it"):
        read_policy(tmp_path / "missing.toml", normalize, BASE)
    broken = tmp_path / "broken.toml"
    broken.write_text("version = \n")
    with pytest.raises(PolicyFileError, match="not valid TOML"):
        read_policy(broken, normalize, BASE)


def test_keys_the_file_leaves_out_come_from_the_base() -> None:
    base = SitePolicy(Thresholds(0.3, 0.6), Thresholds(0.2, 0.7))
    policy = compile_policy({"version": "v"}, normalize, base, source="test")

    assert policy.default.spam == Thresholds(0.3, 0.6)
    assert policy.default.abuse == Thresholds(0.2, 0.7)
    assert policy.default.flood is None


def test_describe_change_lists_each_changed_key() -> None:
    before = {"version": "1", "sites": {"x": {"thresholds": {"abuse": {"reject_at": 0.9}}}}}
    after = {
        "version": "2",
        "sites": {"x": {"thresholds": {"abuse": {"reject_at": 0.8}}}},
        "defaults": {"links": {"max_links": 2}},
    }

    assert describe_change(before, after) == (
        "defaults.links.max_links: '(unset)' -> 2; "
        "sites.x.thresholds.abuse.reject_at: 0.9 -> 0.8; version: '1' -> '2'"
    )
    assert describe_change(before, before) == "no change"
