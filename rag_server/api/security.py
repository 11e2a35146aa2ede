"""Bearer API keys on every route but the health probes; roles as guards; per-key rate limits."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.rate_limit import RateLimitConfig

from rag_server.auth import ApiKey, KeyRing

PUBLIC_PATHS = ["^/healthz$", "^/readyz$"]
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rag-server"'}


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    """`Authorization: Bearer rag_<id>_<secret>`; the key itself is never stored or logged."""

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        keys: KeyRing = connection.app.state.keyring
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotAuthorizedException(
                "an API key is required: Authorization: Bearer <key>", headers=CHALLENGE
            )
        key = keys.authenticate(token.strip())
        if key is None:
            raise NotAuthorizedException("invalid API key", headers=CHALLENGE)
        return AuthenticationResult(user=key, auth=key.id)


def caller(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey:
    user = connection.scope.get("user")
    if not isinstance(user, ApiKey):  # pragma: no cover - the middleware guarantees it
        raise NotAuthorizedException("an API key is required", headers=CHALLENGE)
    return user


def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: uploads and deletes need an admin key."""
    if caller(connection).role != "admin":
        raise PermissionDeniedException("this operation needs an admin key")


def check_collection(key: ApiKey, collection: str) -> None:
    if not key.may_use(collection):
        raise PermissionDeniedException(f"this key may not use collection '{collection}'")


def _rate_key(request: Any) -> str:
    user = request.scope.get("user")
    return f"key:{user.id}" if isinstance(user, ApiKey) else "anonymous"


def rate_limit(per_minute: int) -> RateLimitConfig:
    """A fixed one-minute window per API key (Litestar's limiter); 429 with Retry-After."""
    return RateLimitConfig(
        rate_limit=("minute", per_minute),
        exclude=PUBLIC_PATHS,
        identifier_for_request=_rate_key,
    )
