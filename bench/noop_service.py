"""The engine's floor: a Restate service that does nothing, served and registered exactly like
the shop's services (hypercorn, h2c, signed requests), for bench/orders.py to call through the
same Restate server. `Relay` makes one call to it through Restate, as the order's workflow
calls each of its services: the floor of one step between services."""

import restate
from restate import Context

from shop.shared.serve import run
from shop.shared.settings import ServiceSettings

noop = restate.Service("Noop")
relay = restate.Service("Relay")


@noop.handler()
async def call(ctx: Context, request: dict) -> dict:
    return request


@relay.handler("call")
async def relay_call(ctx: Context, request: dict) -> dict:
    await ctx.generic_call("Noop", "call", b"{}")
    return request


class NoopSettings(ServiceSettings):
    port: int = 9089


if __name__ == "__main__":
    run("noop", [noop, relay], NoopSettings())
