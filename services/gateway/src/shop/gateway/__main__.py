import os
import sys
import tempfile
from typing import TypedDict

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from shop.gateway import worker_metrics
from shop.gateway.app import create_app
from shop.gateway.settings import GatewaySettings, startup_error
from shop.shared.logs import setup_logging
from shop.shared.telemetry import setup_telemetry


def configured() -> GatewaySettings:
    """This process's settings, with its telemetry and logs set up (or exit, saying why)."""
    try:
        settings = GatewaySettings()
    except ValidationError as e:
        sys.exit(f"gateway: refusing to start: {startup_error(e)}")
    setup_telemetry("gateway")
    setup_logging("gateway", settings.log_level, settings.log_format)
    return settings


def worker_app() -> FastAPI:
    """One worker process's app (GATEWAY_WORKERS > 1), configured as a process of its own."""
    return create_app(configured())


class Serving(TypedDict):
    """uvicorn.run's arguments that are the same for one process or several workers."""

    host: str
    port: int
    log_config: None
    timeout_graceful_shutdown: int | None


def main() -> None:
    settings = configured()
    serving: Serving = {
        "host": settings.bind_host,
        "port": settings.port,
        "log_config": None,
        # On SIGTERM: SSE streams end at once (browsers reconnect, with Last-Event-ID, to
        # another gateway); other requests get until the drain deadline. (A float: uvicorn
        # types it int, yet only hands it to asyncio.wait_for, which takes seconds as float.)
        "timeout_graceful_shutdown": settings.shutdown_drain_seconds,  # type: ignore[typeddict-item]
    }
    if settings.gateway_workers == 1:
        uvicorn.run(create_app(settings), **serving)
    else:
        # Where the workers find each other's metrics (they inherit the environment).
        with tempfile.TemporaryDirectory(prefix="shop-gateway-metrics-") as shared:
            os.environ[worker_metrics.FOLDER_ENV] = shared
            uvicorn.run(
                "shop.gateway.__main__:worker_app",
                factory=True,
                workers=settings.gateway_workers,
                **serving,
            )


if __name__ == "__main__":
    main()
