"""Thin views: parse the request, call the `ReviewService`, present the result. Errors are
raised and turned into JSON by the middleware in `app.py`."""

from __future__ import annotations

from aiohttp import web

from service.http import parse, present
from service.http.keys import IDENTITY, OPENAPI, POLICY, READINESS, REVIEW
from service.policy_control import NoPolicyFile
from service.review_service import AccessDenied


def _path_ids(request: web.Request) -> tuple[str, str]:
    parse.query(request, parse.NO_QUERY)
    return (
        parse.site_id(request.match_info["site_id"], "path parameter 'site_id'"),
        parse.comment_id(request.match_info["comment_id"], "path parameter 'comment_id'"),
    )


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    checks = await request.app[READINESS]()
    ok = all(checks.values())
    return web.json_response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


async def openapi(request: web.Request) -> web.Response:
    parse.query(request, parse.NO_QUERY)
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


async def me(request: web.Request) -> web.Response:
    parse.query(request, parse.NO_QUERY)
    return web.json_response(present.identity(request[IDENTITY]))


async def queue(request: web.Request) -> web.Response:
    q = parse.query(request, parse.QUEUE_QUERY)
    page = await request.app[REVIEW].queue(
        request[IDENTITY],
        site_id=parse.query_site(q),
        reason=parse.query_reason(q),
        older_than=parse.query_older_than(q),
        cursor=parse.query_cursor(q),
        limit=parse.query_limit(q),
    )
    return web.json_response(
        {"items": [present.item(i) for i in page.items], "next_cursor": page.next_cursor}
    )


async def claim(request: web.Request) -> web.Response:
    parse.query(request, parse.NO_QUERY)
    site, count, order = parse.claim(await parse.json_object(request, parse.CLAIM_FIELDS))
    items = await request.app[REVIEW].claim(request[IDENTITY], site, count, order)
    return web.json_response({"items": [present.item(i) for i in items]})


async def release(request: web.Request) -> web.Response:
    parse.query(request, parse.NO_QUERY)
    site, ids = parse.release(await parse.json_object(request, parse.RELEASE_FIELDS))
    released = await request.app[REVIEW].release(request[IDENTITY], site, ids)
    return web.json_response({"released": released})


async def detail(request: web.Request) -> web.Response:
    site, comment = _path_ids(request)
    found = await request.app[REVIEW].detail(request[IDENTITY], site, comment)
    return web.json_response(present.detail(found))


async def decide(request: web.Request) -> web.Response:
    site, comment = _path_ids(request)
    doc = await parse.json_object(request, parse.VERDICT_FIELDS)
    item = await request.app[REVIEW].decide(request[IDENTITY], parse.verdict(doc, site, comment))
    return web.json_response({"item": present.item(item)})


async def decide_many(request: web.Request) -> web.Response:
    parse.query(request, parse.NO_QUERY)
    requests = parse.bulk(await parse.json_object(request, parse.BULK_FIELDS))
    results = await request.app[REVIEW].decide_many(request[IDENTITY], requests)
    return web.json_response({"results": [present.bulk_result(r) for r in results]})


async def audit(request: web.Request) -> web.Response:
    q = parse.query(request, parse.AUDIT_QUERY)
    page = await request.app[REVIEW].audit_log(
        request[IDENTITY],
        site_id=parse.query_site(q),
        cursor=parse.query_cursor(q),
        limit=parse.query_limit(q),
    )
    return web.json_response(
        {"entries": [present.audit(e) for e in page.items], "next_cursor": page.next_cursor}
    )


async def stats(request: web.Request) -> web.Response:
    q = parse.query(request, parse.STATS_QUERY)
    found = await request.app[REVIEW].stats(request[IDENTITY], site_id=parse.query_site(q))
    return web.json_response({"sites": [present.stats(s) for s in found]})


async def reload_policy(request: web.Request) -> web.Response:
    parse.query(request, parse.NO_QUERY)
    await parse.json_object(request, frozenset())  # `{}`: like every POST, a JSON object
    who = request[IDENTITY]
    if not who.is_admin:
        raise AccessDenied("forbidden_role", "reloading the policy is for admins")
    control = request.app.get(POLICY)
    if control is None:
        raise NoPolicyFile("this service runs without a policy file: there is nothing to reload")
    change = await control.reload(who.actor)
    return web.json_response(
        {"before": change.before, "after": change.after, "changes": change.changes}
    )
