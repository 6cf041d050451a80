"""The gateway application: lifespan-owned clients, routers, error handlers, static assets."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import httpx
from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shop.gateway import api, errors, pages, webhooks, worker_metrics
from shop.gateway.admission import InFlight
from shop.gateway.answers import Alive, Readiness
from shop.gateway.body_limit import BodyLimit
from shop.gateway.client_limits import ClientLimits
from shop.gateway.deps import Hub, Ingress
from shop.gateway.progress_hub import ProgressHub
from shop.gateway.reconciliations import keep_daily_reconciliation
from shop.gateway.responses import NOT_READY
from shop.gateway.restate_ingress import RestateIngress, restate_client
from shop.gateway.security_headers import SecurityHeaders
from shop.gateway.settings import GatewaySettings
from shop.shared.telemetry import flush_at_exit


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        timeout = httpx.Timeout(settings.restate_timeout_seconds)
        pool = 200  # connections to the ingress; RestateIngress queues what is beyond them
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=50)
        async with restate_client(settings.restate_ingress_urls, timeout, limits) as ingress:
            in_flight = InFlight(settings.max_orders_in_flight, settings.order_in_flight_seconds)
            hub = ProgressHub(
                settings,
                on_status=in_flight.observe,
                payment_page_url=settings.payment_page_url,
            )
            hub_task = asyncio.create_task(hub.run())
            app.state.in_flight = in_flight
            app.state.client_limits = ClientLimits(
                settings.orders_per_client_per_minute,
                settings.streams_per_client,
                settings.streams_per_order,
                settings.streams_in_all,
            )
            app.state.settings = settings
            app.state.ingress = RestateIngress(
                ingress,
                concurrency=pool,
                operator_token=settings.admin_token.get_secret_value(),
            )
            app.state.hub = hub
            planning = asyncio.create_task(keep_daily_reconciliation(app.state.ingress))
            try:
                async with contextlib.AsyncExitStack() as serving:
                    if shared := worker_metrics.folder():  # one worker of several
                        await serving.enter_async_context(worker_metrics.serving_own_series(shared))
                    yield
            finally:
                planning.cancel()
                hub_task.cancel()
                await hub.aclose()
                # uvicorn ends the process with the signal it got, which skips exit handlers.
                flush_at_exit()

    # The API's document and its pages are for developers: the dev stack and tests only.
    docs = settings.shop_dev_mode
    app = FastAPI(
        title="shop gateway",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    # Requests, errors and latency per route for Prometheus, and with tracing on, server spans
    # for every request (the httpx instrumentation, set up with telemetry, carries the trace
    # context on into Restate's ingress).
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,static,metrics")
    errors.install(app)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders, https=settings.public_base_url.startswith("https://"))
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(webhooks.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        """For Prometheus (on the API's port; nothing in it names a customer or an order).
        With several workers, the series of all of them, added up."""
        shared = worker_metrics.folder()
        series = await worker_metrics.all_workers(shared) if shared else generate_latest()
        return Response(series, media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> Alive:
        return Alive()

    @app.get("/readyz", responses=NOT_READY)
    async def readyz(ingress: Ingress, hub: Hub, response: Response) -> Readiness:
        live: Literal["connected", "reconnecting"] = (
            "connected" if hub.connected else "reconnecting"
        )
        missing = await ingress.missing_services()
        if missing:
            response.status_code = 503
            return Readiness(status="waiting", missing=sorted(missing), live_updates=live)
        return Readiness(status="ready", live_updates=live)

    return app
