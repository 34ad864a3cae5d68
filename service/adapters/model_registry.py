"""Model versions on disk, promotion, and the running service's hot swap.

`MODERATION_MODEL_PATH` names the live artifact. Promotion writes the new artifact to
`<path>.versions/<version>/` and points `<path>` at it with one atomic symlink replace, so a
reader sees the old model or the new one, never a mix; earlier versions stay beside it for
`moderation rollback <version>`. The first promotion moves a plain artifact directory into the
versions directory first.

The service polls the live artifact's `model.json`; a new version is loaded in a thread and
handed to the pipeline, which takes it from its next batch (a batch is scored and labelled by
one model). A version that fails to load leaves the running model in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from service.usecases.ports import Classifier

log = logging.getLogger(__name__)

METADATA_FILE: Final = "model.json"


def live_version(path: Path) -> str | None:
    """The `model_version` in the artifact's model.json, or None if it cannot be read."""
    try:
        metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    version = metadata.get("model_version") if isinstance(metadata, dict) else None
    return version if isinstance(version, str) else None


def versions_dir(model_path: Path) -> Path:
    return model_path.with_name(model_path.name + ".versions")


def promote(model_path: Path, candidate: Path, version: str) -> Path:
    """Make the artifact directory `candidate` the live model at `model_path`; returns where
    the new version now lives. The previous live version is kept in the versions directory.
    A version kept there already (after a rollback) is pointed at again."""
    _keep_plain_directory(model_path)
    versions_dir(model_path).mkdir(parents=True, exist_ok=True)
    target = versions_dir(model_path) / version
    if target.exists():
        if live_version(target) != version:
            raise FileExistsError(f"{target} exists and does not hold version {version}")
        shutil.rmtree(candidate)
    else:
        candidate.rename(target)
    _point(model_path, target)
    return target


def rollback(model_path: Path, version: str) -> Path:
    """Point the live model at a kept version; `ModelNotKept` names the versions there are."""
    _keep_plain_directory(model_path)
    target = versions_dir(model_path) / version
    if live_version(target) != version:
        kept = ", ".join(kept_versions(model_path)) or "none"
        raise ModelNotKept(f"no version {version!r} is kept; kept versions: {kept}")
    _point(model_path, target)
    return target


class ModelNotKept(ValueError):
    pass


def kept_versions(model_path: Path) -> list[str]:
    store = versions_dir(model_path)
    if not store.is_dir():
        return []
    return sorted(p.name for p in store.iterdir() if live_version(p) == p.name)


def _keep_plain_directory(model_path: Path) -> None:
    """The first promotion (or rollback): keep the plain artifact directory as a version and
    link to it. Between the rename and the link there is no model at `model_path`; a watcher
    that looks then keeps its running model, and looks again."""
    if not model_path.is_dir() or model_path.is_symlink():
        return
    store = versions_dir(model_path)
    store.mkdir(parents=True, exist_ok=True)
    old = live_version(model_path) or "previous"
    keep = store / old
    suffix = 1
    while keep.exists():
        keep = store / f"{old}.{suffix}"
        suffix += 1
    model_path.rename(keep)
    _point(model_path, keep)


def _point(model_path: Path, target: Path) -> None:
    """Repoint the link in one atomic rename: readers see the old target or the new one."""
    link = model_path.with_name(f".{model_path.name}.{os.getpid()}.link")
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(target.relative_to(model_path.parent))
    link.replace(model_path)


class ModelWatcher:
    """Polls the live artifact and swaps a newly promoted model into the pipeline."""

    def __init__(
        self,
        path: Path,
        current: Classifier,
        *,
        load: Callable[[Path], Classifier],
        on_swap: Callable[[Classifier], None],
        every_seconds: float = 10.0,
        retry_after_seconds: float = 60.0,  # a version that failed to load is tried again
    ) -> None:
        self._path = path
        self._load = load
        self._on_swap = on_swap
        self._every = every_seconds
        self.current = current
        self._failed: tuple[str | None, float] = (None, 0.0)  # a version that failed, when
        self._retry_after = retry_after_seconds
        self._lock = asyncio.Lock()

    async def check(self) -> bool:
        """Load and swap in the live artifact if its version differs; True if swapped."""
        async with self._lock:
            version = await asyncio.to_thread(live_version, self._path)
            if version is None or version == self.current.version:
                return False
            failed_version, failed_at = self._failed
            if version == failed_version and time.monotonic() - failed_at < self._retry_after:
                return False
            try:
                model = await asyncio.to_thread(self._load, self._path)
            except Exception:  # a broken artifact must not stop the service
                self._failed = (version, time.monotonic())
                log.exception(
                    "new model version failed to load; keeping the running one",
                    extra={"model_version": version, "running": self.current.version},
                )
                return False
            previous, self.current, self._failed = self.current, model, (None, 0.0)
            self._on_swap(model)
            log.info(
                "model swapped",
                extra={"model_version": model.version, "previous": previous.version},
            )
            return True

    async def run(self, stop: asyncio.Event) -> None:
        if self._every <= 0:
            await stop.wait()
            return
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._every)
            if not stop.is_set():
                await self.check()
