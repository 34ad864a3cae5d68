"""The policy file (TOML): parsed, validated with errors that name the bad key, compiled.

    version = "2026-11-27.1"            # stamped on every decision

    [defaults]                          # every key optional
    on_scoring_failure = "review"       # or "approve"
    thresholds.spam = { approve_below = 0.5, reject_at = 0.9 }
    thresholds.abuse = { approve_below = 0.3, reject_at = 0.9 }
    thresholds.threat = { reject_at = 0.8 }   # abuse sub-scores: severe_toxicity, insult,
                                        # threat, identity_attack, profanity; none by default
    languages = { supported = ["en"], on_unsupported = "review" }   # or "approve", "score"
    terms = { block = [...], hold = [...], block_patterns = [...], hold_patterns = [...] }
    links = { max_links = 3, block_domains = [...], allow_domains = [...],
              hold_first_time_author = true }
    authors = { trusted = [...], blocked = [...], premoderate_first = 0 }
    flood = { max_comments = 5, window_seconds = 60, action = "review" }
    campaign = { min_authors = 3, window_seconds = 600, action = "reject" }
    spot_check = { approve_rate = 0.0, reject_rate = 0.0 }   # share sent to a moderator too

    [sites."herald"]                    # the same keys, over the defaults
    [shadow]                            # a candidate policy run beside the live one
    version = "candidate-1"
    [shadow.sites."herald"]             # the same keys, over that site's live policy

Terms and patterns match the comment after the classifier's normalisation (so `1d10t`
matches `idiot`); terms match whole words. Patterns are RE2 (linear time: no catastrophic
backtracking, no backreferences or lookaround).
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import re2

from service.domain.errors import InvalidPolicy
from service.domain.model import SubScore
from service.domain.policy import (
    AuthorRules,
    CampaignRule,
    FailureMode,
    FloodRule,
    LanguageMode,
    LanguageRules,
    LinkRules,
    Policy,
    RuleAction,
    SitePolicy,
    SubScoreThresholds,
    TermRules,
    Thresholds,
)
from service.domain.rules import NamedPattern
from service.domain.spot_check import SpotCheckRates

Normalizer = Callable[[str], str]
Table = dict[str, Any]

_THRESHOLD_KEYS: Final = {"approve_below", "reject_at"}
_SECTION_KEYS: Final = {
    "on_scoring_failure": None,
    "thresholds": dict.fromkeys(("spam", "abuse", *(s.value for s in SubScore)), _THRESHOLD_KEYS),
    "languages": {"supported", "on_unsupported"},
    "terms": {"block", "hold", "block_patterns", "hold_patterns"},
    "links": {"max_links", "block_domains", "allow_domains", "hold_first_time_author"},
    "authors": {"trusted", "blocked", "premoderate_first"},
    "flood": {"max_comments", "window_seconds", "action"},
    "campaign": {"min_authors", "window_seconds", "action"},
    "spot_check": {"approve_rate", "reject_rate"},
}
_MAX_PATTERN_MEMORY: Final = 8 << 20
_ISO_639: Final = re.compile(r"[A-Za-z]{2,3}")


class PolicyFileError(InvalidPolicy):
    def __init__(self, path: Path | str, problems: list[str]) -> None:
        super().__init__(f"invalid policy file {path}:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class PolicyFile:
    """The policy file behind the `PolicySource` port: read whole on each call, over `base`."""

    path: Path
    normalize: Normalizer
    base: SitePolicy

    def read(self) -> tuple[Policy, Table]:
        return read_policy(self.path, self.normalize, self.base)

    def describe_change(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
        return describe_change(old, new)


def read_policy(path: Path, normalize: Normalizer, base: SitePolicy) -> tuple[Policy, Table]:
    """The compiled policy and the raw table it came from (for audit diffs). `base` gives the
    defaults of keys the file leaves out."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyFileError(path, [f"cannot read it: {exc.strerror or exc}"]) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyFileError(path, [f"not valid TOML: {exc}"]) from exc
    return compile_policy(raw, normalize, base, source=str(path)), raw


def compile_policy(raw: Table, normalize: Normalizer, base: SitePolicy, source: str) -> Policy:
    problems: list[str] = []
    _check_keys(raw, {"version", "defaults", "sites", "shadow"}, "", problems)
    version = raw.get("version")
    if not isinstance(version, str) or not version.strip():
        problems.append("version: required, a non-empty string")
        version = "invalid"
    defaults_raw = _table(raw, "defaults", "defaults", problems)
    _check_section(defaults_raw, "defaults", problems)
    default = _site(defaults_raw, base, normalize, "defaults", problems)
    sites: dict[str, SitePolicy] = {}
    for site_id, section in _table(raw, "sites", "sites", problems).items():
        where = f"sites.{site_id}"
        if not isinstance(section, dict):
            problems.append(f"{where}: must be a table")
            continue
        _check_section(section, where, problems)
        sites[site_id] = _site(_merge(defaults_raw, section), base, normalize, where, problems)
    shadow_raw = _table(raw, "shadow", "shadow", problems)
    _check_keys(shadow_raw, {"version", "sites"}, "shadow.", problems)
    shadow: dict[str, SitePolicy] = {}
    shadow_version = shadow_raw.get("version")
    if shadow_raw and (not isinstance(shadow_version, str) or not shadow_version.strip()):
        problems.append("shadow.version: required with a shadow policy, a non-empty string")
    for site_id, section in _table(shadow_raw, "sites", "shadow.sites", problems).items():
        where = f"shadow.sites.{site_id}"
        if not isinstance(section, dict):
            problems.append(f"{where}: must be a table")
            continue
        _check_section(section, where, problems)
        live = _merge(defaults_raw, raw.get("sites", {}).get(site_id, {}))
        shadow[site_id] = _site(_merge(live, section), base, normalize, where, problems)
    if problems:
        raise PolicyFileError(source, problems)
    return Policy(
        version=str(version),
        default=default,
        sites=sites,
        shadow=shadow,
        shadow_version=str(shadow_version) if shadow else None,
    )


def _merge(under: Table, over: Mapping[str, Any]) -> Table:
    merged = copy.deepcopy(under)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _table(raw: Mapping[str, Any], key: str, where: str, problems: list[str]) -> Table:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"{where}: must be a table")
        return {}
    return value


def _check_keys(
    raw: Mapping[str, Any], allowed: set[str], prefix: str, problems: list[str]
) -> None:
    for key in raw:
        if key not in allowed:
            problems.append(f"{prefix}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _check_section(section: Mapping[str, Any], where: str, problems: list[str]) -> None:
    _check_keys(section, set(_SECTION_KEYS), f"{where}.", problems)
    for key, allowed in _SECTION_KEYS.items():
        value = section.get(key)
        if allowed is None or value is None:
            continue
        if not isinstance(value, dict):
            problems.append(f"{where}.{key}: must be a table")
            continue
        if isinstance(allowed, dict):
            _check_keys(value, set(allowed), f"{where}.{key}.", problems)
            for label, fields in allowed.items():
                inner = value.get(label)
                if inner is None:
                    continue
                if not isinstance(inner, dict):
                    problems.append(f"{where}.{key}.{label}: must be a table")
                else:
                    _check_keys(inner, fields, f"{where}.{key}.{label}.", problems)
        else:
            _check_keys(value, allowed, f"{where}.{key}.", problems)


class _Reader:
    def __init__(self, section: Table, where: str, problems: list[str]) -> None:
        self._section = section
        self._where = where
        self._problems = problems

    def _get(self, path: tuple[str, ...]) -> Any:
        node: Any = self._section
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def _bad(self, path: tuple[str, ...], rule: str) -> None:
        self._problems.append(f"{self._where}.{'.'.join(path)}: {rule}")

    def number(self, path: tuple[str, ...], default: float, low: float, high: float) -> float:
        value = self.optional_number(path, low, high)
        return default if value is None else value

    def optional_number(self, path: tuple[str, ...], low: float, high: float) -> float | None:
        value = self._get(path)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            self._bad(path, f"must be a number from {low:g} to {high:g}")
            return None
        return float(value)

    def whole(self, path: tuple[str, ...], default: int | None, low: int, high: int) -> int | None:
        value = self._get(path)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self._bad(path, f"must be a whole number from {low} to {high}")
            return default
        return value

    def flag(self, path: tuple[str, ...], default: bool) -> bool:
        value = self._get(path)
        if value is None:
            return default
        if not isinstance(value, bool):
            self._bad(path, "must be true or false")
            return default
        return value

    def strings(self, path: tuple[str, ...]) -> list[str]:
        value = self._get(path)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self._bad(path, "must be a list of non-empty strings")
            return []
        return [v.strip() for v in value]

    def choice(
        self,
        path: tuple[str, ...],
        enum: type[RuleAction] | type[FailureMode] | type[LanguageMode],
        default: Any,
    ) -> Any:
        value = self._get(path)
        if value is None:
            return default
        try:
            return enum(value)
        except ValueError:
            self._bad(path, f"must be one of {', '.join(repr(e.value) for e in enum)}")
            return default

    def present(self, key: str) -> bool:
        return isinstance(self._section.get(key), dict)

    def table(self, path: tuple[str, ...]) -> bool:
        return isinstance(self._get(path), dict)

    def given(self, path: tuple[str, ...]) -> bool:
        return self._get(path) is not None

    def empty_list(self, path: tuple[str, ...]) -> bool:
        return bool(self._get(path) == [])

    def bad(self, path: tuple[str, ...], rule: str) -> None:
        self._bad(path, rule)


def _compile(text: str, where: str, problems: list[str], *, literal: bool) -> NamedPattern | None:
    options = re2.Options()
    options.max_mem = _MAX_PATTERN_MEMORY
    source = rf"\b{re2.escape(text)}\b" if literal else text
    try:
        return NamedPattern(text, re2.compile(source, options))
    except re2.error as exc:
        problems.append(f"{where}: not a valid RE2 pattern ({exc})")
        return None


def _patterns(
    r: _Reader, key: str, normalize: Normalizer, where: str, problems: list[str]
) -> tuple[NamedPattern, ...]:
    compiled = []
    for i, term in enumerate(r.strings(("terms", key))):
        if key.endswith("patterns"):
            found = _compile(term, f"{where}.terms.{key}[{i}]", problems, literal=False)
        else:
            normalized = normalize(term).strip()
            if not normalized:
                problems.append(f"{where}.terms.{key}[{i}]: {term!r} normalises to nothing")
                continue
            found = _compile(normalized, f"{where}.terms.{key}[{i}]", problems, literal=True)
        if found is not None:
            compiled.append(found)
    return tuple(compiled)


def _sub_scores(
    r: _Reader, base: SitePolicy, where: str, problems: list[str]
) -> dict[SubScore, SubScoreThresholds]:
    limits = dict(base.sub_scores)
    for name in SubScore:
        if not r.table(("thresholds", name.value)):
            continue
        approve = r.optional_number(("thresholds", name.value, "approve_below"), 0, 1)
        reject = r.optional_number(("thresholds", name.value, "reject_at"), 0, 1)
        try:
            limits[name] = SubScoreThresholds(approve, reject)
        except InvalidPolicy as exc:
            problems.append(f"{where}.thresholds.{name.value}: {exc}")
    return limits


def _languages(r: _Reader, base: LanguageRules) -> LanguageRules:
    supported = base.supported
    path = ("languages", "supported")
    if r.given(path):
        codes = r.strings(path)  # names a value that is no list of strings itself
        if codes and all(_ISO_639.fullmatch(c) for c in codes):
            supported = frozenset(c.lower() for c in codes)
        elif codes or r.empty_list(path):
            r.bad(path, 'must list ISO 639 language codes (2 or 3 letters, e.g. ["en", "fr"])')
    return LanguageRules(
        supported=supported,
        on_unsupported=r.choice(("languages", "on_unsupported"), LanguageMode, base.on_unsupported),
    )


def _domains(r: _Reader, key: str) -> frozenset[str]:
    return frozenset(d.lower().strip(".").removeprefix("www.") for d in r.strings(("links", key)))


def _site(
    section: Table, base: SitePolicy, normalize: Normalizer, where: str, problems: list[str]
) -> SitePolicy:
    r = _Reader(section, where, problems)
    thresholds = {}
    for label, fallback in (("spam", base.spam), ("abuse", base.abuse)):
        approve = r.number(("thresholds", label, "approve_below"), fallback.approve_below, 0, 1)
        reject = r.number(("thresholds", label, "reject_at"), fallback.reject_at, 0, 1)
        try:
            thresholds[label] = Thresholds(approve, reject)
        except InvalidPolicy as exc:
            problems.append(f"{where}.thresholds.{label}: {exc}")
            thresholds[label] = fallback
    flood = base.flood
    if r.present("flood"):
        flood = FloodRule(
            max_comments=r.whole(("flood", "max_comments"), 5, 1, 100_000) or 5,
            window_seconds=r.number(("flood", "window_seconds"), 60, 1, 86_400 * 7),
            action=r.choice(("flood", "action"), RuleAction, RuleAction.REVIEW),
        )
    campaign = base.campaign
    if r.present("campaign"):
        campaign = CampaignRule(
            min_authors=r.whole(("campaign", "min_authors"), 3, 2, 100_000) or 3,
            window_seconds=r.number(("campaign", "window_seconds"), 600, 1, 86_400 * 7),
            action=r.choice(("campaign", "action"), RuleAction, RuleAction.REJECT),
        )
    return SitePolicy(
        spam=thresholds["spam"],
        abuse=thresholds["abuse"],
        terms=TermRules(
            block=_patterns(r, "block", normalize, where, problems)
            + _patterns(r, "block_patterns", normalize, where, problems),
            hold=_patterns(r, "hold", normalize, where, problems)
            + _patterns(r, "hold_patterns", normalize, where, problems),
        ),
        links=LinkRules(
            max_links=r.whole(("links", "max_links"), base.links.max_links, 0, 10_000),
            block_domains=_domains(r, "block_domains"),
            allow_domains=_domains(r, "allow_domains"),
            hold_first_time_author=r.flag(
                ("links", "hold_first_time_author"), base.links.hold_first_time_author
            ),
        ),
        authors=AuthorRules(
            trusted=frozenset(r.strings(("authors", "trusted"))),
            blocked=frozenset(r.strings(("authors", "blocked"))),
            premoderate_first=r.whole(("authors", "premoderate_first"), 0, 0, 1000) or 0,
        ),
        flood=flood,
        campaign=campaign,
        on_scoring_failure=r.choice(("on_scoring_failure",), FailureMode, base.on_scoring_failure),
        sub_scores=_sub_scores(r, base, where, problems),
        languages=_languages(r, base.languages),
        spot_check=SpotCheckRates(
            approve_rate=r.number(
                ("spot_check", "approve_rate"), base.spot_check.approve_rate, 0, 1
            ),
            reject_rate=r.number(("spot_check", "reject_rate"), base.spot_check.reject_rate, 0, 1),
        ),
    )


def flatten(raw: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def describe_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """What changed between two policy files, key by key (for the audit log)."""
    before, after = flatten(old), flatten(new)
    lines = []
    for key in sorted(before.keys() | after.keys()):
        if before.get(key) != after.get(key):
            lines.append(f"{key}: {before.get(key, '(unset)')!r} -> {after.get(key, '(unset)')!r}")
    return "; ".join(lines) if lines else "no change"
