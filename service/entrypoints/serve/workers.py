"""`moderation serve --workers N`: N pipeline processes on one host, behind one front process.

The supervisor (this module, in the process `serve` was started as) owns the public HTTP port
(service/entrypoints/serve/front.py) and starts N workers, each a plain `serve` of its own: worker
k has instance id `<instance>-wk` and transactional id `<transactional id>-wk`, and all join the
one consumer group, so they share the partitions and keep the exactly-once guarantees of
separate instances; a restart of the same instance fences its own workers' zombies.

Each worker listens on a loopback socket the supervisor bound for it (passed as a file
descriptor: no port can be taken in between) and asks the kernel to SIGKILL it when the
supervisor dies (PR_SET_PDEATHSIG), so a killed supervisor leaves no orphans behind.

Signals: SIGTERM and SIGINT are forwarded to every worker (each commits its batch in hand and
exits); the supervisor exits 0 once all have exited 0. SIGHUP is forwarded (policy and model
reload). A worker that exits unexpectedly stops the host: the others get SIGTERM and the
supervisor exits 1, for the orchestrator to restart it whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

from service.domain.errors import ModerationError
from service.entrypoints.http.app import MAX_REQUEST_LINE
from service.entrypoints.serve.front import Upstream, front_app
from service.settings import PREFIX, Settings, worker_suffix

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG: Final = 1  # <linux/prctl.h>
STOP_GRACE_SECONDS: Final = 60.0  # after SIGTERM, how long a worker may take to exit
SERVE: Final = (sys.executable, "-m", "service", "serve")


class WorkerStartError(ModerationError):
    """A worker process could not be started, or the front could not listen."""


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """What the supervisor tells a worker on its command line: `serve --worker K:PID:FD`."""

    index: int
    parent_pid: int
    listen_fd: int

    @property
    def name(self) -> str:
        """The worker's `worker` label in the host's metrics and its logs."""
        return f"w{self.index}"

    def encode(self) -> str:
        return f"{self.index}:{self.parent_pid}:{self.listen_fd}"

    @classmethod
    def parse(cls, raw: str) -> WorkerRole:
        index, parent_pid, listen_fd = (int(part) for part in raw.split(":"))
        return cls(index, parent_pid, listen_fd)

    def socket(self) -> socket.socket:
        return socket.socket(fileno=self.listen_fd)


def die_with_parent(parent_pid: int) -> bool:
    """Have the kernel SIGKILL this process when its parent dies (Linux prctl). False if the
    parent is already gone (it died before the call): the caller should exit."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")
    return os.getppid() == parent_pid


def worker_env(settings: Settings, index: int, port: int, env: Mapping[str, str]) -> dict[str, str]:
    """Worker `index`'s environment: the supervisor's, with its own ids and loopback port."""
    suffix = worker_suffix(index)
    return {
        **env,
        f"{PREFIX}INSTANCE_ID": settings.instance_id + suffix,
        f"{PREFIX}TRANSACTIONAL_ID": settings.transactional_id + suffix,
        f"{PREFIX}WORKERS": "1",
        f"{PREFIX}HTTP_HOST": "127.0.0.1",
        f"{PREFIX}HTTP_PORT": str(port),
    }


@dataclass(frozen=True, slots=True)
class _Worker:
    upstream: Upstream
    proc: asyncio.subprocess.Process

    def signal(self, sig: signal.Signals) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)


async def _spawn(
    settings: Settings, index: int, command: Sequence[str], env: Mapping[str, str]
) -> _Worker:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: refused until the worker listens
        sock.set_inheritable(True)
        port = int(sock.getsockname()[1])
        role = WorkerRole(index, os.getpid(), sock.fileno())
        proc = await asyncio.create_subprocess_exec(
            *command,
            "--worker",
            role.encode(),
            env=worker_env(settings, index, port, env),
            stdin=asyncio.subprocess.DEVNULL,
            pass_fds=(sock.fileno(),),
        )
    log.info("worker started", extra={"worker": role.name, "pid": proc.pid, "port": port})
    return _Worker(Upstream(role.name, port), proc)


async def supervise(
    settings: Settings,
    *,
    command: Sequence[str] = SERVE,
    env: Mapping[str, str] | None = None,
    stop_grace_seconds: float = STOP_GRACE_SECONDS,
) -> int:
    """Run `settings.workers` workers behind the front until SIGTERM/SIGINT or until one
    exits by itself. 0 when every worker exited 0 after a stop, else 1."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    workers: list[_Worker] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def reload() -> None:
        for worker in workers:
            worker.signal(signal.SIGHUP)

    loop.add_signal_handler(signal.SIGHUP, reload)
    own = CollectorRegistry()
    ProcessCollector(registry=own)
    try:
        for index in range(settings.workers):
            workers.append(await _spawn(settings, index, command, env or os.environ))
        runner = web.AppRunner(
            front_app([w.upstream for w in workers], own),
            access_log=None,
            max_line_size=MAX_REQUEST_LINE,
            max_field_size=16 * 1024,
        )
        await runner.setup()
    except BaseException:
        await _stop_all(workers, stop_grace_seconds)
        raise
    try:
        await _listen(runner, settings)
        failed = await _until_stop_or_exit(stop, workers)
        codes = await _stop_all(workers, stop_grace_seconds)
    finally:
        await _stop_all(workers, stop_grace_seconds)
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    log.info("workers stopped", extra={"exit_codes": codes})
    return 1 if failed or any(code != 0 for code in codes) else 0


async def _listen(runner: web.AppRunner, settings: Settings) -> None:
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    try:
        await site.start()
    except OSError as exc:
        raise WorkerStartError(
            f"cannot listen on {settings.http_host}:{settings.http_port}: {exc}"
        ) from exc
    log.info(
        "http listening",
        extra={"url": f"http://{settings.http_host}:{settings.http_port}/", "workers": "all"},
    )


async def _until_stop_or_exit(stop: asyncio.Event, workers: Sequence[_Worker]) -> bool:
    """Wait for a stop signal (False) or for a worker to exit by itself (True)."""
    stopped = asyncio.ensure_future(stop.wait())
    exits = {asyncio.ensure_future(w.proc.wait()): w for w in workers}
    try:
        done, _ = await asyncio.wait({stopped, *exits}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (stopped, *exits):
            task.cancel()
    if stopped in done:
        log.info("stopping the workers")
        return False
    for task in done:
        worker = exits[task]
        log.error(
            "worker exited unexpectedly, stopping the others",
            extra={"worker": worker.upstream.name, "exit_code": worker.proc.returncode},
        )
    return True


async def _stop_all(workers: Sequence[_Worker], grace_seconds: float) -> list[int]:
    """SIGTERM to every worker still running, SIGKILL to those still running after the
    grace; their exit codes (negative: killed by that signal)."""
    for worker in workers:
        worker.signal(signal.SIGTERM)
    waits = [asyncio.ensure_future(w.proc.wait()) for w in workers]
    if waits:
        _, late = await asyncio.wait(waits, timeout=grace_seconds)
        for worker, wait in zip(workers, waits, strict=True):
            if wait in late:
                log.error(
                    "worker did not stop in time, killing it",
                    extra={"worker": worker.upstream.name},
                )
                worker.signal(signal.SIGKILL)
    return list(await asyncio.gather(*waits))
