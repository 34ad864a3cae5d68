"""Thin views: parse the request, call the `ReviewService`, present the result. Errors are
raised and turned into JSON by the middleware in `app.py`."""

from __future__ import annotations

from aiohttp import web

from service.domain.access import Role
from service.entrypoints.http import parse, present
from service.entrypoints.http.coral import (
    CoralRequestError,
    StaffPolicy,
    answer,
    comment_event,
    signature_valid,
    staff_approval,
)
from service.entrypoints.http.errors import ApiError
from service.entrypoints.http.keys import (
    CORAL,
    IDENTITY,
    MODERATE_BUDGET,
    MODERATOR,
    OPENAPI,
    POLICY,
    READINESS,
    REVIEW,
)
from service.entrypoints.http.present import spot_check_json
from service.usecases.policy_control import NoPolicyFile
from service.usecases.review_service import AccessDenied
from service.usecases.sync_moderation import DecisionPending


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


def _undo_seconds(request: web.Request) -> float:
    return request.app[REVIEW].bulk.undo_window.total_seconds()


async def create_bulk_action(request: web.Request) -> web.Response:
    parse.query(request, parse.NO_QUERY)
    wanted = parse.bulk_action(await parse.json_object(request, parse.BULK_ACTION_FIELDS))
    action = await request.app[REVIEW].bulk.create(request[IDENTITY], wanted)
    return web.json_response(
        {"bulk_action": present.bulk_action(action), "undo_seconds": _undo_seconds(request)}
    )


async def bulk_actions(request: web.Request) -> web.Response:
    q = parse.query(request, parse.BULK_ACTIONS_QUERY)
    found = await request.app[REVIEW].bulk.pending(request[IDENTITY], parse.query_site(q))
    return web.json_response(
        {
            "bulk_actions": [present.bulk_action(a) for a in found],
            "undo_seconds": _undo_seconds(request),
        }
    )


async def bulk_action(request: web.Request) -> web.Response:
    parse.query(request, parse.NO_QUERY)
    action_id = parse.bulk_action_id(request.match_info["action_id"])
    action = await request.app[REVIEW].bulk.get(request[IDENTITY], action_id)
    return web.json_response({"bulk_action": present.bulk_action(action)})


async def undo_bulk_action(request: web.Request) -> web.Response:
    parse.query(request, parse.NO_QUERY)
    action_id = parse.bulk_action_id(request.match_info["action_id"])
    await parse.json_object(request, frozenset())  # `{}`: like every POST, a JSON object
    action = await request.app[REVIEW].bulk.undo(request[IDENTITY], action_id)
    return web.json_response({"bulk_action": present.bulk_action(action)})


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


async def spot_checks(request: web.Request) -> web.Response:
    q = parse.query(request, parse.STATS_QUERY)
    found = await request.app[REVIEW].spot_checks(request[IDENTITY], site_id=parse.query_site(q))
    return web.json_response({"spot_checks": [spot_check_json(e) for e in found]})


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


def _pending() -> ApiError:
    return ApiError(
        503,
        "decision_pending",
        "the decision took longer than the latency budget; it will be published to "
        "comment-decisions, and asking again returns it",
    )


async def moderate(request: web.Request) -> web.Response:
    parse.query(request, parse.NO_QUERY)
    who = request[IDENTITY]
    if who.role not in (Role.SITE, Role.ADMIN):
        raise AccessDenied("forbidden_role", "submitting comments needs a site or admin token")
    raw = await request.read()
    site = _site_of(raw)
    if site is not None and not who.can_see(site):
        raise AccessDenied("forbidden_site", f"this token may not submit to site {site[:64]!r}")
    moderator = request.app.get(MODERATOR)
    if moderator is None:
        raise ApiError(404, "not_found", "synchronous moderation is not enabled here")
    try:
        result = await moderator.moderate(raw, request.app[MODERATE_BUDGET])
    except DecisionPending:
        raise _pending() from None
    headers = {"Idempotent-Replayed": "true"} if result.replay else None
    return web.json_response(result.document(), headers=headers)


def _site_of(raw: bytes) -> str | None:
    """The event's site_id, if it names one; a body that is no JSON object is a 400 here, like
    on every POST route. The comment decoder judges the rest."""
    site = parse.json_document(raw).get("site_id")
    return site if isinstance(site, str) else None


async def coral(request: web.Request) -> web.StreamResponse:
    config = request.app.get(CORAL)
    moderator = request.app.get(MODERATOR)
    if config is None or moderator is None or not config.secrets:
        raise ApiError(404, "not_found", "the Coral integration is not enabled here")
    raw = await request.read()
    if not signature_valid(raw, request.headers.get("X-Coral-Signature"), config.secrets):
        raise ApiError(401, "invalid_signature", "X-Coral-Signature does not match the body")
    try:
        event, staff = comment_event(raw, config.body_format)
    except CoralRequestError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    # A comment our contract refuses raises InvalidComment: a 400, as on every route (Coral
    # logs the failed phase, and its later phases decide the comment).
    try:
        if staff and config.staff is StaffPolicy.APPROVE:
            model, policy = moderator.versions()
            result = await moderator.record_fixed(
                event, lambda comment: staff_approval(comment, model, policy)
            )
        else:
            # a withheld comment is decided in Coral's queue: it does not join ours
            result = await moderator.moderate(event, config.budget_seconds, queue_review=False)
    except DecisionPending:
        return web.Response(status=204)  # no opinion in time: Coral moves on
    reply = answer(result.decision, config.on_approve)
    return web.Response(status=204) if reply is None else web.json_response(reply)
