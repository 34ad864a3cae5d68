"""Reloading the policy file at run time (SIGHUP or the admin API), with an audit entry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.domain.errors import InvalidPolicy
from service.domain.policy import Policy
from service.usecases.ports import AuditLog, Clock, PolicySource

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
        source: PolicySource | None,
        *,
        fallback: Policy,
        store: AuditLog,
        clock: Clock,
        on_change: Callable[[Policy], None],
    ) -> None:
        self._source = source
        self._store = store
        self._clock = clock
        self.on_change = on_change
        self._lock = asyncio.Lock()
        self._raw: Mapping[str, Any] = {}
        self.policy = fallback

    def load(self) -> Policy:
        """At start: the file if there is one (its errors stop the start), else `fallback`."""
        if self._source is not None:
            self.policy, self._raw = self._source.read()
        return self.policy

    async def reload(self, actor: str) -> PolicyChange:
        """Read the file again. A bad file changes nothing and raises `InvalidPolicy`; either
        way the attempt is in the audit log."""
        if self._source is None:
            raise NoPolicyFile("no MODERATION_POLICY_FILE is set: there is nothing to reload")
        async with self._lock:
            before = self.policy.version
            try:
                policy, raw = await asyncio.to_thread(self._source.read)
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
            change = PolicyChange(
                before, policy.version, self._source.describe_change(self._raw, raw)
            )
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
