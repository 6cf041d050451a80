"""Serve Restate services over HTTP/2 cleartext and register them with the Restate admin API."""

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Iterable

import httpx
import restate
import uvloop
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from restate._internal import IdentityKeyException
from restate.server import install_shutdown_hook
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from shop.shared import handler_metrics
from shop.shared.drain import ASGIApp, Draining, exit_at
from shop.shared.logs import setup_logging
from shop.shared.metrics import BeforeScrape, with_metrics
from shop.shared.settings import ServiceSettings
from shop.shared.telemetry import EXIT_FLUSH_SECONDS, flush_at_exit, setup_telemetry

log = logging.getLogger(__name__)
# What an app is made of: the SDK's service kinds.
RestateService = restate.Service | restate.VirtualObject | restate.Workflow


class RegistrationRejected(Exception):
    """Restate answered but refused the deployment (for example a 409 on an existing URL)."""


class RequestSigningMisconfigured(Exception):
    """Request signing is off outside dev mode, or RESTATE_IDENTITY_KEYS holds a bad key."""


def identity_keys(settings: ServiceSettings) -> list[str]:
    """The public keys whose signature this service requires on every request from Restate.

    Empty (accept unsigned requests) only in dev mode, with a warning; outside dev mode a
    service without keys refuses to start, since anyone reaching its port could run its
    handlers (charge a card, send mail) outside Restate's journal."""
    keys = settings.identity_keys
    if keys:
        return keys
    if settings.shop_dev_mode:
        log.warning(
            "RESTATE_IDENTITY_KEYS is empty and SHOP_DEV_MODE is set: accepting UNSIGNED "
            "requests on %s:%s from anyone who can reach it. Never run like this outside dev.",
            settings.bind_host,
            settings.port,
        )
        return []
    raise RequestSigningMisconfigured(
        "RESTATE_IDENTITY_KEYS is not set: this service would run handlers for anyone who "
        f"reaches port {settings.port}, not only for Restate. Set it to the public key of the "
        "Restate server's request-identity key (publickeyv1_...; `python -m "
        "shop.dev.identity_keys generate PATH` makes a pair), or set SHOP_DEV_MODE=true for a "
        "local stack without request signing."
    )


def restate_app(
    services: Iterable[RestateService],
    settings: ServiceSettings,
    before_scrape: BeforeScrape | None = None,
) -> ASGIApp:
    """The SDK's ASGI app, verifying Restate's signature on every request but /health (and
    Prometheus's /metrics beside it)."""
    keys = identity_keys(settings)
    services = list(services)
    handler_metrics.timed(services)
    try:
        app = restate.app(services=services, identity_keys=keys)
    except IdentityKeyException as e:
        raise RequestSigningMisconfigured(
            f"RESTATE_IDENTITY_KEYS has a key the SDK rejects: {e}"
        ) from e
    if keys:
        log.info("accepting only requests signed by Restate (%d identity key(s))", len(keys))
    return with_metrics(app, before_scrape)  # GET /metrics for Prometheus, unsigned like /health


async def register(settings: ServiceSettings) -> None:
    """Register this deployment, retrying (forever, backing off) until Restate answers; with
    several admin URLs (a cluster's nodes), each try goes to the next one."""
    body = {"uri": settings.deployment_url, "force": settings.restate_register_force}
    admins = settings.restate_admin_urls

    def url(attempt: int) -> str:
        return f"{admins[(attempt - 1) % len(admins)]}/deployments"

    def retrying(state: RetryCallState) -> None:
        assert state.outcome is not None  # the failed attempt's, set before any sleep
        log.info(
            "Restate admin not ready at %s (%s); retrying",
            url(state.attempt_number),
            state.outcome.exception(),
        )

    async for attempt in AsyncRetrying(
        wait=wait_exponential(multiplier=0.2, max=5),
        retry=retry_if_exception_type(httpx.HTTPError),
        before_sleep=retrying,
    ):
        with attempt:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(url(attempt.retry_state.attempt_number), json=body)
            if response.status_code == 409:
                raise RegistrationRejected(response.text)
            response.raise_for_status()
    services = [s["name"] for s in response.json().get("services", [])]
    log.info("registered %s at %s: %s", settings.deployment_url, response.url, ", ".join(services))


KEEP_ALIVE_SECONDS = 600
MAX_STREAMS = 1000


def server_config(bind: str) -> Config:
    config = Config()
    config.bind = [bind]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # our format, not a second handler
    # Restate keeps one HTTP/2 connection per deployment and sends every invocation over it.
    # hypercorn's default closes a connection after its 1,000th request with a GOAWAY that
    # strands the invocations still on it until Restate's keep-alive gives up (20-60 s, a
    # stall of every order seen under load): never close one for its request count.
    config.keep_alive_max_requests = sys.maxsize
    # Nor for being idle: hypercorn's default (5 s) closed Restate's connection at every pause
    # of traffic, and the next invocation paid for a new one.
    config.keep_alive_timeout = KEEP_ALIVE_SECONDS
    # Every invocation in flight is one stream, held open while its handler waits on a call
    # (until Restate suspends it): at hypercorn's default cap (100) the 101st waited in
    # Restate for a free stream, a ceiling on orders in flight per service.
    config.h2_max_concurrent_streams = MAX_STREAMS
    return config


async def _serve(app: ASGIApp, settings: ServiceSettings) -> None:
    config = server_config(f"{settings.bind_host}:{settings.port}")
    # On SIGTERM: no new connections or invocations (Restate retries them), the invocations
    # in flight suspend at their next wait (see shop.shared.drain), and the process exits as
    # soon as they have; whatever still runs at the drain deadline is cut off there, for
    # Restate to retry. (hypercorn's own cutting, its graceful timeout, is left unused: it
    # cancels the handlers, which the SDK does not expect, and ends in a trail of errors.)
    deadline = settings.shutdown_drain_seconds
    config.graceful_timeout = deadline + 10
    stop, draining = asyncio.Event(), Draining()

    def shut_down() -> None:
        if stop.is_set():
            return
        log.info("stopping: draining invocations (at most %ss)", deadline)
        exit_at(max(0.0, deadline - EXIT_FLUSH_SECONDS), before_exit=flush_at_exit)
        draining.start()
        stop.set()

    loop = asyncio.get_running_loop()
    # The SDK's ASGI app also hooks SIGTERM; join its hook list rather than add a handler of
    # our own, which the app would replace when it first runs.
    install_shutdown_hook(loop, shut_down, signal.SIGTERM)
    loop.add_signal_handler(signal.SIGINT, shut_down)
    server = asyncio.create_task(
        # hypercorn types the ASGI scope and messages as TypedDicts, which an app typed with
        # plain mappings (shop.shared.drain's) cannot accept: the same app, differently typed.
        hypercorn_serve(draining.wrap(app), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    )
    if settings.restate_register:
        registration = asyncio.create_task(register(settings))
        done, _ = await asyncio.wait({server, registration}, return_when=asyncio.FIRST_COMPLETED)
        if registration in done:
            registration.result()  # a rejected registration ends the process: it must not idle
    await server


def run(
    name: str,
    services: Iterable[RestateService],
    settings: ServiceSettings,
    before_scrape: BeforeScrape | None = None,
) -> None:
    """Entry point for a Restate service process: telemetry and logs, serve on h2c (and
    /metrics), register, stop on SIGTERM."""
    setup_telemetry(name)
    setup_logging(name, settings.log_level, settings.log_format)
    try:
        app = restate_app(services, settings, before_scrape)
    except RequestSigningMisconfigured as e:
        log.critical("%s: refusing to start: %s", name, e)
        sys.exit(2)
    uvloop.run(_serve(app, settings))  # libuv's loop: less CPU per request than asyncio's
    # Served and drained: leave at once. Python's own teardown (freeing every module, one by
    # one) takes longer than the drain; all there is left to do is write out the telemetry
    # and the logs.
    flush_at_exit()
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)
