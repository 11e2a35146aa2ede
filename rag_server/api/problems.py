"""Every error leaves as RFC 9457 problem details, mapped here in one place."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from rag_server.errors import RagError

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
    title = "Invalid request" if isinstance(exc, ValidationException) else "Request failed"
    return problem(exc.status_code, title, str(exc.detail), exc.headers, **extra)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "Internal error", "an unexpected error occurred", instance=request.url.path)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    RagError: handle_rag_error,
    HTTPException: handle_http_error,
    Exception: handle_unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem"]
