import uvicorn

from shop.gateway.app import create_app
from shop.gateway.settings import GatewaySettings
from shop.shared.logs import setup_logging
from shop.shared.telemetry import setup_telemetry

settings = GatewaySettings()
setup_telemetry("gateway")
setup_logging("gateway", settings.log_level, settings.log_format)
uvicorn.run(create_app(settings), host=settings.bind_host, port=settings.port, log_config=None)
