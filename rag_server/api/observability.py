"""HTTP request metrics (rag_http_*) labelled with the status each request really got."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

from litestar.connection import Request
from litestar.exceptions import HTTPException
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from prometheus_client import Gauge

from rag_core.errors import RagError

if TYPE_CHECKING:
    from litestar.types import Message, Receive, Scope, Send


def status_of(exc: BaseException) -> int:
    """The status the exception handlers will answer with (see api/problems.py)."""
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, RagError):
        return exc.status
    return 500


class HttpMetricsMiddleware(PrometheusMiddleware):
    """Litestar's Prometheus middleware, corrected where it reports what did not happen:

    - a request refused by a middleware (401 from the key check, 429 from a limiter) raises
      before any response is sent, so the stock middleware counted it as its default, 200;
      here the status is the one the exception handlers will send;
    - once a response has started, its status is final: a stream the client leaves, or one
      that fails half-way, stays what the client and the access log saw;
    - requests in progress have no status yet, so that gauge carries none.
    """

    def requests_in_progress(self, labels: dict[str, str | int | float]) -> Gauge:
        name = f"{self._config.prefix}_requests_in_progress"
        if name not in PrometheusMiddleware._metrics:
            PrometheusMiddleware._metrics[name] = Gauge(
                name,
                "Requests being answered now",
                labelnames=[k for k in labels if k != "status_code"],
                multiprocess_mode="livesum",
            )
        return cast(Gauge, PrometheusMiddleware._metrics[name])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request[Any, Any, Any](scope, receive)
        if self._config.excluded_http_methods and request.method in (
            self._config.excluded_http_methods
        ):
            await self.app(scope, receive, send)
            return
        labels = {**self._get_default_labels(request), **self._get_extra_labels(request)}
        labels.pop("status_code", None)
        started = time.perf_counter()
        status: int | None = None  # set by the response start, or by what escaped before it

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_progress = self.requests_in_progress(labels).labels(*labels.values())
        in_progress.inc()
        try:
            await self.app(scope, receive, tracking_send)
        except BaseException as exc:
            if status is None:
                status = status_of(exc)
            raise
        finally:
            in_progress.dec()
            code = status if status is not None else 500
            done = {**labels, "status_code": code}
            values = list(done.values())
            extra: dict[str, Any] = {}
            if self._config.exemplars:
                extra["exemplar"] = self._config.exemplars(request)
            if code >= 500:
                self.requests_error_count(done).labels(*values).inc(**extra)
            self.request_count(done).labels(*values).inc(**extra)
            self.request_time(done).labels(*values).observe(time.perf_counter() - started, **extra)


def http_metrics() -> PrometheusConfig:
    """rag_http_* metrics, one series per route template (not per document id)."""
    return PrometheusConfig(
        app_name="rag-server",
        prefix="rag_http",
        group_path=True,
        middleware_class=HttpMetricsMiddleware,
    )


__all__ = ["HttpMetricsMiddleware", "http_metrics"]
