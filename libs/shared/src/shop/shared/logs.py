"""One log setup for every process: structured (JSON) lines, or plain text for a terminal,
each carrying the service and, inside a request or a handler's step, the trace and span ids.
Handlers log through `restate.getLogger`, which drops lines while a handler replays."""

import logging

from pythonjsonlogger.json import JsonFormatter

from shop.shared.telemetry import current_ids


class TraceIds(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        trace_id, span_id = current_ids()
        record.trace_id, record.span_id = trace_id, span_id
        record.ids = f" trace_id={trace_id} span_id={span_id}" if trace_id else ""
        return True


def setup_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(TraceIds(service))
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(service)s %(name)s %(message)s"
                " %(trace_id)s %(span_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter(
                "%(asctime)s %(levelname)-5s %(service)s %(name)s: %(message)s%(ids)s"
            )
        )
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # Per-request access lines drown the order steps; keep warnings and errors.
    for noisy in ("httpx", "stripe", "hypercorn.access", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Restate's ASGI app has no lifespan; hypercorn warns about that at every start.
    logging.getLogger("hypercorn.error").addFilter(
        lambda record: "Lifespan" not in record.getMessage()
    )
