"""The engine's floor: a Restate service that does nothing, served and registered exactly like
the shop's services (hypercorn, h2c, signed requests), for bench/orders.py to call through the
same Restate server."""

import restate
from restate import Context

from shop.shared.serve import run
from shop.shared.settings import ServiceSettings

noop = restate.Service("Noop")


@noop.handler()
async def call(ctx: Context, request: dict) -> dict:
    return request


class NoopSettings(ServiceSettings):
    port: int = 9089


if __name__ == "__main__":
    run("noop", [noop], NoopSettings())
