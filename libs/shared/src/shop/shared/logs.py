"""One log format for every process, naming the service on each line."""

import logging


def setup_logging(service: str, level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)-5s {service} %(name)s: %(message)s",
        force=True,
    )
    # Per-request access lines drown the order steps; keep warnings and errors.
    for noisy in ("httpx", "stripe", "hypercorn.access", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Restate's ASGI app has no lifespan; hypercorn warns about that at every start.
    logging.getLogger("hypercorn.error").addFilter(
        lambda record: "Lifespan" not in record.getMessage()
    )
