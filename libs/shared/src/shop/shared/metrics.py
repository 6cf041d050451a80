"""`/metrics` for Prometheus, on the port each process already serves: the services' HTTP/2
port for Restate (hypercorn answers Prometheus's HTTP/1.1 on it too), the gateway's :8000.
The series are the OpenTelemetry instruments of shop.shared.telemetry, read by the
Prometheus reader set up there, and the process's own (CPU, memory, open files)."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Gauge, make_asgi_app

from shop.shared.restate_admin import AdminUnavailable, RestateAdmin

log = logging.getLogger(__name__)
METRICS_PATH = "/metrics"
metrics_app = make_asgi_app()
BeforeScrape = Callable[[], Awaitable[None]]


def with_metrics(app: Any, before_scrape: BeforeScrape | None = None) -> Any:
    """The app, with GET /metrics answered beside it (after `before_scrape`, which reads
    what is only worth reading when Prometheus asks)."""

    async def routed(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == METRICS_PATH:
            if before_scrape is not None:
                await before_scrape()
            await metrics_app(scope, receive, send)
        else:
            await app(scope, receive, send)

    return routed


invocations = Gauge(
    "shop_invocations",
    "Restate's invocations not yet completed, by service and state (running, backing-off, "
    "paused, suspended, ...), as Restate's admin API has them when Prometheus scrapes",
    ["restate_service", "state"],  # not `service`: the scrape target's (orders) is that
)
# What the alerts read: invocations that wait for an operator, or keep failing.
WATCHED_STATES = ("paused", "backing-off")
INVOCATIONS_BY_STATE = (
    "SELECT target_service_name AS service, status AS state, count(*) AS n"
    " FROM sys_invocation WHERE status != 'completed' GROUP BY target_service_name, status"
)


def invocation_states(admin: RestateAdmin) -> BeforeScrape:
    """Reads the invocations by state from Restate's admin API (the first node that answers).
    When none does: a warning, and the series keep the values last read."""

    async def read() -> None:
        try:
            rows = await admin.query(INVOCATIONS_BY_STATE)
        except AdminUnavailable as e:
            log.warning("invocation states not read: %s", e)
            return
        invocations.clear()
        for state in WATCHED_STATES:  # at 0 when there are none, not absent
            invocations.labels("", state).set(0)
        for row in rows:
            invocations.labels(row["service"], row["state"]).set(row["n"])

    return read
