"""`moderation shadow-report`: how a candidate policy's would-be decisions compare with the
live ones, read from `comment-decisions` and `comment-decisions-shadow` (read_committed)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from service.entrypoints.cli.topic_reader import read_to_end
from service.settings import Settings


@dataclass
class SiteComparison:
    compared: int = 0
    agree: int = 0
    live: Counter[str] = field(default_factory=Counter)
    shadow: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)  # "approve->review": n

    def as_dict(self) -> dict[str, Any]:
        def rate(counts: Counter[str], action: str) -> float | None:
            return round(counts[action] / self.compared, 4) if self.compared else None

        return {
            "compared": self.compared,
            "agreement": round(self.agree / self.compared, 4) if self.compared else None,
            "live": dict(self.live),
            "shadow": dict(self.shadow),
            "auto_reject_rate": {
                "live": rate(self.live, "reject"),
                "shadow": rate(self.shadow, "reject"),
            },
            "review_rate": {
                "live": rate(self.live, "review"),
                "shadow": rate(self.shadow, "review"),
            },
            "changes": dict(self.changes),
        }


async def _latest_auto(settings: Settings, topic: str) -> dict[str, tuple[str, str, str]]:
    """key -> (site, action, policy_version) of each comment's automatic decision."""
    found: dict[str, tuple[str, str, str]] = {}
    async with contextlib.aclosing(read_to_end(settings.kafka_bootstrap, topic)) as records:
        async for record in records:
            try:
                doc = json.loads(record.value)
            except (TypeError, ValueError):
                continue
            if isinstance(doc, dict) and doc.get("decided_by") == "auto":
                key = f"{doc.get('site_id')}:{doc.get('comment_id')}"
                found[key] = (
                    str(doc.get("site_id")),
                    str(doc.get("action")),
                    str(doc.get("policy_version")),
                )
    return found


async def shadow_report(settings: Settings) -> dict[str, Any]:
    live = await _latest_auto(settings, settings.topic_decisions)
    shadow = await _latest_auto(settings, settings.topic_shadow)
    sites: dict[str, SiteComparison] = {}
    versions: Counter[str] = Counter()
    for key, (site, action, version) in shadow.items():
        if key not in live:
            continue  # a live decision not yet read
        versions[version] += 1
        comparison = sites.setdefault(site, SiteComparison())
        live_action = live[key][1]
        comparison.compared += 1
        comparison.agree += live_action == action
        comparison.live[live_action] += 1
        comparison.shadow[action] += 1
        if live_action != action:
            comparison.changes[f"{live_action}->{action}"] += 1
    return {
        "shadow_versions": dict(versions),
        "unmatched_shadow_decisions": sum(1 for k in shadow if k not in live),
        "sites": {site: c.as_dict() for site, c in sorted(sites.items())},
    }


def format_shadow_report(report: dict[str, Any]) -> str:
    lines = [f"shadow policy versions: {report['shadow_versions'] or 'none seen'}"]
    for site, c in report["sites"].items():
        lines.append(
            f"{site}: {c['compared']} compared, agreement {c['agreement']:.1%}; "
            f"auto-reject {c['auto_reject_rate']['live']:.1%} -> "
            f"{c['auto_reject_rate']['shadow']:.1%}; review {c['review_rate']['live']:.1%} -> "
            f"{c['review_rate']['shadow']:.1%}; changes {c['changes'] or 'none'}"
        )
    if report["unmatched_shadow_decisions"]:
        lines.append(f"{report['unmatched_shadow_decisions']} shadow decisions without a live one")
    return "\n".join(lines)
