"""Bearer API keys on every route but the health probes; roles as guards; per-key rate limits;
failed authentications limited per client address."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.rate_limit import RateLimitConfig

from rag_core.errors import RagError
from rag_server.auth import ApiKey, KeyRing

PUBLIC_PATHS = ["^/healthz$", "^/readyz$"]
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="rag-server"'}


class TooManyFailedAuthenticationsError(RagError):
    """429 for an address past its failed-authentication limit; Retry-After is when it ends."""

    status = 429
    title = "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "too many failed authentications from this address; retry after the Retry-After seconds"
        )
        self.retry_after = retry_after


class FailedAuthLimiter:
    """At most `per_minute` missing or wrong keys per client address in a fixed one-minute
    window (the per-key limiter's window); past it, every request from that address is refused
    until the window ends, a right key included, so guessing cannot go on behind the 429s.

    Not Litestar's rate limiter: that one counts every request before the key is known, and its
    store is read and written across awaits; this count is only of failures, and atomic.
    Behind a proxy the address is the one uvicorn takes from X-Forwarded-For (trusted proxies).
    """

    MAX_ADDRESSES = 100_000  # memory bound under a spread-out attack

    def __init__(self, per_minute: int, window_s: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window_s = window_s
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[int, float]] = {}  # address -> (failures, window end)

    def retry_after(self, address: str) -> int | None:
        """Seconds until this address may try again, or None if it may try now."""
        now = time.monotonic()
        with self._lock:
            failures, end = self._windows.get(address, (0, now))
        if end > now and failures >= self.per_minute:
            return max(1, math.ceil(end - now))
        return None

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            failures, end = self._windows.get(address, (0, now))
            if end <= now:
                failures, end = 0, now + self.window_s
                if len(self._windows) >= self.MAX_ADDRESSES:
                    self._forget(now)
            self._windows[address] = (failures + 1, end)

    def _forget(self, now: float) -> None:
        """Drop ended windows, then addresses not (yet) limited, then the oldest half: an attacker
        spraying from many addresses cannot flush out the limit on another one."""
        self._windows = {a: w for a, w in self._windows.items() if w[1] > now}
        if len(self._windows) >= self.MAX_ADDRESSES:
            limited = {a: w for a, w in self._windows.items() if w[0] >= self.per_minute}
            self._windows = limited
        if len(self._windows) >= self.MAX_ADDRESSES:
            oldest = sorted(self._windows, key=lambda a: self._windows[a][1])
            for address in oldest[: len(oldest) // 2]:
                del self._windows[address]


class ApiKeyMiddleware(AbstractAuthenticationMiddleware):
    """`Authorization: Bearer rag_<id>_<secret>`; the key itself is never stored or logged."""

    def __init__(self, app: Any, limiter: FailedAuthLimiter, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.limiter = limiter

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        address = connection.client.host if connection.client else "unknown"
        retry_after = self.limiter.retry_after(address)
        if retry_after is not None:
            raise TooManyFailedAuthenticationsError(retry_after)
        keys: KeyRing = connection.app.state.keyring
        scheme, _, token = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.limiter.failed(address)
            raise NotAuthorizedException(
                "an API key is required: Authorization: Bearer <key>", headers=CHALLENGE
            )
        key = keys.authenticate(token.strip())
        if key is None:
            self.limiter.failed(address)
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
