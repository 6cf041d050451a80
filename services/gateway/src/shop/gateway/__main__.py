import sys

import uvicorn
from pydantic import ValidationError

from shop.gateway.app import create_app
from shop.gateway.settings import GatewaySettings, startup_error
from shop.shared.logs import setup_logging
from shop.shared.telemetry import setup_telemetry

try:
    settings = GatewaySettings()
except ValidationError as e:
    sys.exit(f"gateway: refusing to start: {startup_error(e)}")
setup_telemetry("gateway")
setup_logging("gateway", settings.log_level, settings.log_format)
uvicorn.run(
    create_app(settings),
    host=settings.bind_host,
    port=settings.port,
    log_config=None,
    # On SIGTERM: SSE streams end at once (browsers reconnect, with Last-Event-ID, to another
    # gateway); other requests get until the drain deadline.
    timeout_graceful_shutdown=settings.shutdown_drain_seconds,
)
