"""The read-only JSON API under ``/api/v1/``.

Every endpoint except the OpenAPI description needs ``Authorization: Bearer <token>`` (a per-user token made at
``/account/tokens``); the session cookie is never accepted here, so the blueprint is exempt from CSRF (it only
reads). Any active account (viewer or above) may use it. Errors are JSON: ``{"error": code, "message": text}``.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload
from werkzeug.exceptions import HTTPException

from dashboard.db import get_db
from monitor.accounts import user_for_token
from monitor.pipeline.feeds import feed_to_dict, item_counts, list_feeds
from monitor.pipeline.releases import release_to_dict
from monitor.pipeline.review import STATUSES
from monitor.queries import MatchFilter, list_matches, match_to_dict
from monitor.storage.tables import Claim, Item, Match, Release, Statement

bp = Blueprint("api", __name__, url_prefix="/api/v1")

LABELS = ("contradicts", "supports", "discusses")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
_PUBLIC = frozenset({"api.openapi"})


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.headers = status, error, message, headers or {}


def _error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": error, "message": message})
    response.status_code = status
    response.headers.update(headers or {})
    return response


@bp.errorhandler(ApiError)
def _api_error(err: ApiError) -> Response:
    return _error(err.status, err.error, err.message, err.headers)


_HTTP_ERRORS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "too_large", 429: "too_many_requests", 500: "server_error"}


def _http_error(err: HTTPException) -> Response:
    code = err.code or 500
    if code == 500:
        get_db().rollback()
    message = "Something went wrong. The error was logged." if code == 500 else (err.description or err.name)
    return _error(code, _HTTP_ERRORS.get(code, "error"), message)


for _code in _HTTP_ERRORS:  # by code: the app's own (HTML) handlers are registered by code and would win
    bp.register_error_handler(_code, _http_error)


@bp.before_request
def _authenticate() -> Response | None:
    if request.method not in _READ_METHODS:
        return _error(405, "method_not_allowed", "The API is read-only; use GET.", {"Allow": "GET, HEAD"})
    if request.endpoint in _PUBLIC:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="api"'}
    if scheme.lower() != "bearer" or not token.strip():
        return _error(401, "unauthorized", "Send an API token as 'Authorization: Bearer <token>'; "
                                           "create one at /account/tokens.", challenge)
    db = get_db()
    user = user_for_token(db, token.strip())
    if user is None:
        return _error(401, "unauthorized", "The token is unknown or revoked, or its account is disabled.",
                      {"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'})
    db.commit()  # last_used_at
    g.api_user = user
    return None


# -- parameters ------------------------------------------------------------------------------------------------

def _int_arg(name: str, *, minimum: int = 1, maximum: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be a whole number") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ApiError(400, "bad_request", f"{name} must be {bound}")
    return value


def _limit() -> int:
    return _int_arg("limit", minimum=1, maximum=MAX_LIMIT) or DEFAULT_LIMIT


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise ApiError(400, "bad_request", f"{name} must be one of {', '.join(allowed)}")
    return value


def _match_cursor(value: str | None) -> tuple[float, int] | None:
    if not value:
        return None
    score_text, sep, id_text = value.rpartition(":")
    try:
        score, match_id = float(score_text), int(id_text)
    except ValueError:
        score, match_id = math.nan, 0
    if not sep or not math.isfinite(score) or match_id < 1:
        raise ApiError(400, "bad_request", "before must be the next_before value of the previous page")
    return score, match_id


def _page(items: list[Any], limit: int, cursor: str | None, endpoint: str) -> dict[str, Any]:
    args = {k: v for k, v in request.args.items() if k != "before"}
    return {
        "items": items,
        "limit": limit,
        "next_before": cursor,
        "next": url_for(endpoint, **args, before=cursor) if cursor else None,
    }


# -- endpoints -------------------------------------------------------------------------------------------------

@bp.route("/matches", methods=_ANY_METHOD)
def matches() -> Any:
    min_score: float | None = None
    if request.args.get("min_score"):
        try:
            min_score = float(request.args["min_score"])
        except ValueError:
            min_score = math.nan
        if not (math.isfinite(min_score) and 0.0 <= min_score <= 1.0):
            raise ApiError(400, "bad_request", "min_score must be a number from 0 to 1")
    flt = MatchFilter(status=_choice("status", STATUSES), label=_choice("label", LABELS),
                      release_id=_int_arg("release_id"), feed_id=_int_arg("feed_id"), min_score=min_score)
    limit = _limit()
    rows = list_matches(get_db(), flt, limit=limit + 1, before=_match_cursor(request.args.get("before")))
    cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        cursor = f"{rows[-1].score!r}:{rows[-1].id}"
    return jsonify(_page([match_to_dict(m) for m in rows], limit, cursor, "api.matches"))


@bp.route("/matches/<int:match_id>", methods=_ANY_METHOD)
def match(match_id: int) -> Any:
    row = get_db().scalar(select(Match).where(Match.id == match_id).options(
        joinedload(Match.claim).joinedload(Claim.item).joinedload(Item.feed),
        joinedload(Match.statement).joinedload(Statement.release)))
    if row is None:
        raise ApiError(404, "not_found", f"match {match_id} does not exist")
    return jsonify(match_to_dict(row))


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def item_to_dict(item: Item, *, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": item.id, "feed_id": item.feed_id, "feed": item.feed.name, "guid": item.guid, "url": item.url,
        "title": item.title, "summary": item.summary_text, "author": item.author, "language": item.language,
        "published_at": _iso(item.published_at), "updated_at": _iso(item.updated_at),
        "fetched_at": _iso(item.fetched_at), "checked_at": _iso(item.checked_at),
    }
    if full:
        data["content"] = item.content_text
        data["claims"] = [{"id": c.id, "position": c.position, "source": c.source, "text": c.text,
                           "start": c.start, "end": c.end} for c in item.claims]
    return data


@bp.route("/items", methods=_ANY_METHOD)
def items() -> Any:
    limit = _limit()
    before = _int_arg("before")
    feed_id = _int_arg("feed_id")
    query = select(Item).options(joinedload(Item.feed)).order_by(Item.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(Item.id < before)
    if feed_id is not None:
        query = query.where(Item.feed_id == feed_id)
    rows = list(get_db().scalars(query))
    cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        cursor = str(rows[-1].id)
    return jsonify(_page([item_to_dict(i) for i in rows], limit, cursor, "api.items"))


@bp.route("/items/<int:item_id>", methods=_ANY_METHOD)
def item(item_id: int) -> Any:
    row = get_db().scalar(select(Item).where(Item.id == item_id)
                          .options(joinedload(Item.feed), selectinload(Item.claims)))
    if row is None:
        raise ApiError(404, "not_found", f"item {item_id} does not exist")
    return jsonify(item_to_dict(row, full=True))


@bp.route("/feeds", methods=_ANY_METHOD)
def feeds() -> Any:
    db = get_db()
    counts = item_counts(db)  # one query, not one per feed
    return jsonify({"items": [feed_to_dict(f, counts.get(f.id, 0)) for f in list_feeds(db)]})


@bp.route("/releases", methods=_ANY_METHOD)
def releases() -> Any:
    rows = get_db().scalars(select(Release).options(selectinload(Release.statements)).order_by(Release.id))
    return jsonify({"items": [release_to_dict(r) for r in rows]})


@bp.route("/releases/<int:release_id>", methods=_ANY_METHOD)
def release(release_id: int) -> Any:
    row = get_db().scalar(select(Release).where(Release.id == release_id)
                          .options(selectinload(Release.statements)))
    if row is None:
        raise ApiError(404, "not_found", f"release {release_id} does not exist")
    data = release_to_dict(row)
    data["body"] = row.body
    data["statements"] = [{"id": s.id, "position": s.position, "text": s.text, "start": s.start, "end": s.end}
                          for s in row.statements]
    return jsonify(data)


@bp.route("/openapi.json", methods=_ANY_METHOD)
def openapi() -> Any:
    return jsonify(openapi_spec())


@bp.route("/<path:_rest>", methods=_ANY_METHOD)
def unknown(_rest: str) -> Any:
    raise ApiError(404, "not_found", "no such API endpoint; see /api/v1/openapi.json")


# -- OpenAPI 3.1 -----------------------------------------------------------------------------------------------

def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
}
_NOT_FOUND = {"404": {"$ref": "#/components/responses/NotFound"}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _page_schema(item: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "limit", "next_before", "next"], "properties": {
        "items": {"type": "array", "items": _ref(item)},
        "limit": {"type": "integer"},
        "next_before": {"type": ["string", "null"], "description": "pass as `before` for the next page"},
        "next": {"type": ["string", "null"], "description": "URL of the next page, null on the last"},
    }}


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI 3.1 description of this blueprint (written by hand next to the views it describes)."""
    nullable_str = {"type": ["string", "null"]}
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    limit = _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                   "page size")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Statement monitor API", "version": "1",
                 "description": "Read-only access to matches, items, feeds and releases. Authenticate with a "
                                "per-user token from /account/tokens: `Authorization: Bearer <token>`."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/matches": {"get": {
                "operationId": "listMatches", "summary": "Matches, most confident first then newest",
                "parameters": [
                    _query("status", {"type": "string", "enum": list(STATUSES)}, "review status"),
                    _query("label", {"type": "string", "enum": list(LABELS)}, "classifier label"),
                    _query("release_id", {"type": "integer", "minimum": 1}, "only this release"),
                    _query("feed_id", {"type": "integer", "minimum": 1}, "only items of this feed"),
                    _query("min_score", {"type": "number", "minimum": 0, "maximum": 1}, "lowest score"),
                    _query("before", {"type": "string", "pattern": r"^[0-9.eE+-]+:[0-9]+$"},
                           "keyset cursor `score:id`: next_before of the previous page"),
                    limit,
                ],
                "responses": {"200": _json(_page_schema("Match"), "a page of matches"), **_ERRORS},
            }},
            "/matches/{match_id}": {"get": {
                "operationId": "getMatch", "summary": "One match", "parameters": [_path_id("match_id")],
                "responses": {"200": _json(_ref("Match"), "the match"), **_ERRORS, **_NOT_FOUND},
            }},
            "/items": {"get": {
                "operationId": "listItems", "summary": "Collected news items, newest first",
                "parameters": [
                    _query("feed_id", {"type": "integer", "minimum": 1}, "only this feed"),
                    _query("before", {"type": "integer", "minimum": 1},
                           "keyset cursor (an item id): next_before of the previous page"),
                    limit,
                ],
                "responses": {"200": _json(_page_schema("Item"), "a page of items"), **_ERRORS},
            }},
            "/items/{item_id}": {"get": {
                "operationId": "getItem", "summary": "One item with its content and claims",
                "parameters": [_path_id("item_id")],
                "responses": {"200": _json(_ref("ItemDetail"), "the item"), **_ERRORS, **_NOT_FOUND},
            }},
            "/feeds": {"get": {
                "operationId": "listFeeds", "summary": "All feeds with their health",
                "responses": {"200": _json({"type": "object", "properties": {
                    "items": {"type": "array", "items": _ref("Feed")}}}, "the feeds"), **_ERRORS},
            }},
            "/releases": {"get": {
                "operationId": "listReleases", "summary": "All releases",
                "responses": {"200": _json({"type": "object", "properties": {
                    "items": {"type": "array", "items": _ref("Release")}}}, "the releases"), **_ERRORS},
            }},
            "/releases/{release_id}": {"get": {
                "operationId": "getRelease", "summary": "One release with its body and statements",
                "parameters": [_path_id("release_id")],
                "responses": {"200": _json(_ref("ReleaseDetail"), "the release"), **_ERRORS, **_NOT_FOUND},
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This description (no token needed)", "security": [],
                "responses": {"200": _json({"type": "object"}, "the OpenAPI document")},
            }},
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "a token from /account/tokens"}},
            "responses": {
                "BadRequest": _json(_ref("Error"), "a parameter is invalid"),
                "Unauthorized": _json(_ref("Error"), "missing, unknown or revoked token, or disabled account"),
                "NotFound": _json(_ref("Error"), "no such record"),
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string"}, "message": {"type": "string"}}},
                "Match": {"type": "object", "required": ["id", "label", "score", "status"], "properties": {
                    "id": {"type": "integer"}, "label": {"type": "string", "enum": list(LABELS)},
                    "score": {"type": "number"}, "status": {"type": "string", "enum": list(STATUSES)},
                    "claim": {"type": "string"}, "claim_source": {"type": "string", "enum": ["title", "body"]},
                    "statement": {"type": "string"},
                    "item": {"type": "object", "properties": {
                        "id": {"type": "integer"}, "guid": {"type": "string"}, "url": nullable_str,
                        "title": {"type": "string"}, "feed": {"type": "string"}, "feed_id": {"type": "integer"}}},
                    "release": {"type": "object", "properties": {"id": {"type": "integer"},
                                                                 "title": {"type": "string"}}},
                    "reasons": {"type": "array", "items": {"type": "object", "properties": {
                        "kind": {"type": "string"}, "text": {"type": "string"},
                        "claim_span": {"type": ["array", "null"], "items": {"type": "integer"}},
                        "statement_span": {"type": ["array", "null"], "items": {"type": "integer"}}}}},
                    "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
                    "model_version": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"},
                    "reviewed_at": nullable_time, "note": nullable_str,
                }},
                "Item": {"type": "object", "required": ["id", "feed_id"], "properties": {
                    "id": {"type": "integer"}, "feed_id": {"type": "integer"}, "feed": {"type": "string"},
                    "guid": {"type": "string"}, "url": nullable_str, "title": {"type": "string"},
                    "summary": {"type": "string"}, "author": nullable_str, "language": nullable_str,
                    "published_at": nullable_time, "updated_at": nullable_time,
                    "fetched_at": {"type": "string", "format": "date-time"}, "checked_at": nullable_time}},
                "ItemDetail": {"allOf": [_ref("Item"), {"type": "object", "properties": {
                    "content": {"type": "string"},
                    "claims": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "integer"}, "position": {"type": "integer"},
                        "source": {"type": "string"}, "text": {"type": "string"},
                        "start": {"type": "integer"}, "end": {"type": "integer"}}}}}}]},
                "Feed": {"type": "object", "required": ["id", "url", "name", "kind"], "properties": {
                    "id": {"type": "integer"}, "url": {"type": "string"}, "name": {"type": "string"},
                    "kind": {"type": "string", "enum": ["news", "official"]},
                    "interval_minutes": {"type": "integer"}, "enabled": {"type": "boolean"},
                    "last_fetched_at": nullable_time, "last_status": {"type": ["integer", "null"]},
                    "last_error": nullable_str, "error_count": {"type": "integer"},
                    "next_fetch_at": nullable_time, "disabled_reason": nullable_str,
                    "warnings": {"type": "array", "items": {"type": "string"}}}},
                "Release": {"type": "object", "required": ["id", "title"], "properties": {
                    "id": {"type": "integer"}, "title": {"type": "string"}, "url": nullable_str,
                    "language": nullable_str, "published_at": nullable_time, "source": {"type": "string"},
                    "retired": {"type": "boolean"}, "statements": {"type": "integer",
                                                                   "description": "number of statements"},
                    "created_at": {"type": "string", "format": "date-time"}}},
                "ReleaseDetail": {"type": "object", "required": ["id", "title", "body", "statements"],
                                  "properties": {
                    "id": {"type": "integer"}, "title": {"type": "string"}, "url": nullable_str,
                    "language": nullable_str, "published_at": nullable_time, "source": {"type": "string"},
                    "retired": {"type": "boolean"}, "created_at": {"type": "string", "format": "date-time"},
                    "body": {"type": "string"},
                    "statements": {"type": "array", "items": {"type": "object", "properties": {
                        "id": {"type": "integer"}, "position": {"type": "integer"}, "text": {"type": "string"},
                        "start": {"type": "integer"}, "end": {"type": "integer"}}}}}},
            },
        },
    }
