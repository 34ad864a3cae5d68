"""Reloading the policy file at run time (SIGHUP or the admin API), with an audit entry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.adapters.policy_file import Normalizer, describe_change, read_policy
from service.domain.errors import InvalidPolicy
from service.domain.policy import Policy, SitePolicy
from service.usecases.ports import Clock, ReviewStore

log = logging.getLogger(__name__)


class NoPolicyFile(InvalidPolicy):
    pass


@dataclass(frozen=True, slots=True)
class PolicyChange:
    before: str
    after: str
    changes: str


class PolicyControl:
    def __init__(
        self,
        path: Path | None,
        *,
        base: SitePolicy,
        fallback: Policy,
        normalize: Normalizer,
        store: ReviewStore,
        clock: Clock,
        on_change: Callable[[Policy], None],
    ) -> None:
        self._path = path
        self._base = base
        self._normalize = normalize
        self._store = store
        self._clock = clock
        self.on_change = on_change
        self._lock = asyncio.Lock()
        self._raw: dict[str, Any] = {}
        self.policy = fallback

    def load(self) -> Policy:
        """At start: the file if there is one (its errors stop the start), else `fallback`."""
        if self._path is not None:
            self.policy, self._raw = read_policy(self._path, self._normalize, self._base)
        return self.policy

    async def reload(self, actor: str) -> PolicyChange:
        """Read the file again. A bad file changes nothing and raises `InvalidPolicy`; either
        way the attempt is in the audit log."""
        if self._path is None:
            raise NoPolicyFile("no MODERATION_POLICY_FILE is set: there is nothing to reload")
        async with self._lock:
            before = self.policy.version
            try:
                policy, raw = await asyncio.to_thread(
                    read_policy, self._path, self._normalize, self._base
                )
            except InvalidPolicy as exc:
                await self._store.add_audit(
                    actor,
                    "policy_reload_failed",
                    None,
                    None,
                    str(exc)[:2000],
                    now=self._clock.now(),
                )
                log.warning("policy reload refused", extra={"actor": actor, "error": str(exc)})
                raise
            change = PolicyChange(before, policy.version, describe_change(self._raw, raw))
            self.policy, self._raw = policy, raw
            self.on_change(policy)
            await self._store.add_audit(
                actor,
                "policy_reload",
                None,
                None,
                f"version {before} -> {policy.version}; {change.changes}"[:4000],
                now=self._clock.now(),
            )
            log.info(
                "policy reloaded",
                extra={"actor": actor, "policy_version": policy.version, "previous": before},
            )
            return change
