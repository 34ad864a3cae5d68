"""The front of `serve --workers N`: the host's one HTTP port, in the supervisor process.

`/metrics`, `/healthz` and `/readyz` speak for the whole host: the workers' expositions merged
into one (a `worker` label on every sample, HELP and TYPE once per family), healthy and ready
only when every worker is. Every other request is passed to a worker on its private loopback
port: requests with the same credentials (bearer token, or a Perspective `key`) always go to
the same worker, so per-key rate limits hold as configured; the rest go round-robin.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from yarl import URL

from service.entrypoints.http import perspective_views
from service.entrypoints.http.app import SECURITY_HEADERS
from service.entrypoints.http.errors import error_response, google_error_response

WORKER_LABEL: Final = "worker"
SUPERVISOR: Final = "supervisor"  # the `worker` label of the supervisor's own process metrics
WORKER_UP: Final = "moderation_worker_up"
# Hop-by-hop headers (RFC 9110 7.6.1) and those the two sides set for themselves.
_NOT_PASSED: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "date",
        "server",
    }
)
PROBE_SECONDS: Final = 5.0  # how long the host's /metrics, /healthz, /readyz wait for a worker


@dataclass(frozen=True, slots=True)
class Upstream:
    """One worker's HTTP side: its name (the `worker` label) and its loopback port."""

    name: str
    port: int

    def url(self, path: str) -> URL:
        return URL(f"http://127.0.0.1:{self.port}{path}", encoded=True)


UPSTREAMS: Final[web.AppKey[tuple[Upstream, ...]]] = web.AppKey("upstreams")
SESSION: Final = web.AppKey("session", aiohttp.ClientSession)
_TURNS: Final[web.AppKey[Iterator[Upstream]]] = web.AppKey("turns")
OWN_METRICS: Final = web.AppKey("own_metrics", CollectorRegistry)


class _Families(Collector):
    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def merge_metrics(scrapes: Mapping[str, str | None], own: CollectorRegistry | None = None) -> bytes:
    """One exposition from each worker's (None: it could not be read), every sample labelled
    with its worker, plus `moderation_worker_up` and the supervisor's own `own` metrics."""
    families: dict[str, Metric] = {}

    def add(worker: str, parsed: Iterable[Metric]) -> None:
        for family in parsed:
            merged = families.get(family.name)
            if merged is None:
                merged = Metric(family.name, family.documentation, family.type, family.unit)
                families[family.name] = merged
            merged.samples.extend(
                sample._replace(labels={**sample.labels, WORKER_LABEL: worker})
                for sample in family.samples
            )

    up = Metric(WORKER_UP, "1 if the worker's metrics were read for this scrape, else 0.", "gauge")
    for worker, text in scrapes.items():
        up.add_sample(WORKER_UP, {WORKER_LABEL: worker}, 0.0 if text is None else 1.0)
        if text is not None:
            add(worker, text_string_to_metric_families(text))
    if own is not None:
        add(SUPERVISOR, own.collect())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families([*families.values(), up]))
    return generate_latest(registry)


async def _get(session: aiohttp.ClientSession, upstream: Upstream, path: str) -> tuple[int, bytes]:
    """Status and body of a GET to the worker; (0, b"") when it does not answer."""
    try:
        async with session.get(
            upstream.url(path),
            headers={"Accept-Encoding": "identity"},  # the session does not decompress
            timeout=aiohttp.ClientTimeout(total=PROBE_SECONDS),
        ) as response:
            return response.status, await response.read()
    except (aiohttp.ClientError, TimeoutError):
        return 0, b""


async def _each(request: web.Request, path: str) -> list[tuple[Upstream, int, bytes]]:
    """Each worker with the status and body of its answer to a GET of `path`."""
    session = request.app[SESSION]
    upstreams = request.app[UPSTREAMS]
    answers = await asyncio.gather(*(_get(session, u, path) for u in upstreams))
    return [(u, status, body) for u, (status, body) in zip(upstreams, answers, strict=True)]


async def metrics(request: web.Request) -> web.Response:
    answers = await _each(request, "/metrics")
    scrapes = {u.name: body.decode() if status == 200 else None for u, status, body in answers}
    merged = await asyncio.to_thread(merge_metrics, scrapes, request.app.get(OWN_METRICS))
    return web.Response(body=merged, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


async def health(request: web.Request) -> web.Response:
    """Healthy when every worker answers its own /healthz."""
    answers = await _each(request, "/healthz")
    each = {u.name: "ok" if status == 200 else "unavailable" for u, status, _ in answers}
    ok = all(state == "ok" for state in each.values())
    return web.json_response(
        {"status": "ok" if ok else "unavailable", "workers": each}, status=200 if ok else 503
    )


async def ready(request: web.Request) -> web.Response:
    """Ready when every worker is. `checks` holds each check of the workers' /readyz, true
    only where it holds in all of them, and `workers` whether every worker answered."""
    answers = await _each(request, "/readyz")
    each: dict[str, Any] = {}
    checks: dict[str, bool] = {}
    for upstream, status, body in answers:
        doc = _json(body) if status else None
        if not isinstance(doc, dict):
            doc = {"status": "unreachable", "checks": {}}
        each[upstream.name] = doc
        for name, value in dict(doc.get("checks") or {}).items():
            checks[name] = checks.get(name, True) and value is True
    reachable = all(status in (200, 503) for _, status, _ in answers)
    ok = reachable and all(status == 200 for _, status, _ in answers)
    return web.json_response(
        {
            "status": "ok" if ok else "unavailable",
            "checks": {**checks, "workers": reachable},
            "workers": each,
        },
        status=200 if ok else 503,
    )


def pick(request: web.Request) -> Upstream:
    """The worker for this request: by its credentials if it has any, else the next one. One
    credential always reaches one worker, so its rate limit is not multiplied by N; a
    Perspective key counts the same in `?key=` and in `X-Goog-Api-Key`."""
    upstreams = request.app[UPSTREAMS]
    credential = (
        request.headers.get("Authorization")
        or request.query.get("key")
        or request.headers.get("X-Goog-Api-Key")
    )
    if credential:
        return upstreams[zlib.crc32(credential.encode("utf-8", "replace")) % len(upstreams)]
    turns = request.app[_TURNS]
    return next(turns)


def _passed(headers: Mapping[str, str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _NOT_PASSED)


async def proxy(request: web.Request) -> web.StreamResponse:
    """The request as it came (method, raw path and query, headers, body streamed), to one
    worker; its answer as it came back."""
    upstream = pick(request)
    headers = _passed(request.headers)
    if "Content-Length" in request.headers:
        headers["Content-Length"] = request.headers["Content-Length"]
    try:
        async with request.app[SESSION].request(
            request.method,
            upstream.url(request.raw_path),
            headers=headers,
            data=request.content if request.body_exists else None,
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            return web.Response(
                status=answer.status,
                reason=answer.reason,
                body=body,
                headers=_passed(answer.headers),
            )
    except (aiohttp.ClientError, TimeoutError):
        message = f"worker {upstream.name} is not answering, retry"
        if request.path.startswith(perspective_views.PREFIX):
            return google_error_response(503, message)
        return error_response(503, "unavailable", message)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def front_app(
    upstreams: Sequence[Upstream], own_metrics: CollectorRegistry | None = None
) -> web.Application:
    """The host's app over the workers' `upstreams`; `own_metrics` (the supervisor's process
    metrics) join the merged /metrics."""
    app = web.Application()
    app[UPSTREAMS] = tuple(upstreams)
    app[_TURNS] = itertools.cycle(upstreams)
    if own_metrics is not None:
        app[OWN_METRICS] = own_metrics

    async def session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(
            auto_decompress=False,
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=300),
        ) as client:
            app[SESSION] = client
            yield

    app.cleanup_ctx.append(session)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/metrics", metrics, allow_head=False)
    app.router.add_get("/healthz", health, allow_head=False)
    app.router.add_get("/readyz", ready, allow_head=False)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app
