"""Every error leaves as RFC 9457 problem details, mapped here in one place."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec

from rag_core.errors import RagError
from rag_server.api.schemas import Problem

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


def problem_body(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """An RFC 9457 object, for responses and for the `error` event of a stream alike."""
    return {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response[dict[str, Any]]:
    body = problem_body(status, title, detail, **extra)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def handle_rag_error(request: Request[Any, Any, Any], exc: RagError) -> Response[dict[str, Any]]:
    if exc.status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.url.path, exc.status, exc.detail)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return problem(exc.status, exc.title, exc.detail, headers, instance=request.url.path)


def handle_http_error(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[dict[str, Any]]:
    extra: dict[str, Any] = {"instance": request.url.path}
    if isinstance(exc, ValidationException) and exc.extra:
        extra["errors"] = exc.extra
    title = (
        "Invalid request"
        if isinstance(exc, ValidationException)
        else _TITLES.get(exc.status_code, "Request failed")
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 429 and "RateLimit-Reset" in headers:
        headers.setdefault("Retry-After", str(max(1, int(headers["RateLimit-Reset"]))))
    detail = str(exc.detail)
    if exc.status_code == 429:
        detail = "rate limit for this API key exceeded; retry after the Retry-After seconds"
    return problem(exc.status_code, title, detail, headers or None, **extra)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "Internal error", "an unexpected error occurred", instance=request.url.path)


_TITLES = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    429: "Too many requests",
}

_MEANING = {
    400: "Invalid request: the problem names the offending field",
    401: "Missing or invalid API key",
    403: "The key's role or collections do not allow this",
    404: "No such collection or document (or not readable with this key)",
    409: "The collection was built with another embedder",
    413: "Request body too large",
    422: "Unacceptable content (e.g. an upload of an unsupported or corrupt file)",
    429: "Rate limit of this API key, or failed authentications from this address, exceeded; "
    "see Retry-After",
    500: "Unexpected error",
    503: "Overloaded (queue full) or a dependency is unavailable; see Retry-After",
    507: "The vector store could not be written (e.g. its disk is full); nothing half-written",
}


def responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem responses a route can return (plus those of every route)."""
    every = (400, 401, 413, 429, 500)
    return {
        code: ResponseSpec(
            data_container=Problem,
            description=_MEANING[code],
            media_type="application/problem+json",
            generate_examples=False,
        )
        for code in sorted(set(codes) | set(every))
    }


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    RagError: handle_rag_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem"]
