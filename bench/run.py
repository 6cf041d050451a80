"""`./task bench -- <benchmark> [options]`: `orders` (orders/s against the engine's floor and
the skeleton order), `profile` (where each process's CPU goes under load) or `sse` (live-progress
fan-out, the default). Each prints figures and asserts nothing."""

import sys

import cpu_profile
import orders
import sse_fanout

BENCHMARKS = {"orders": orders.main, "profile": cpu_profile.main, "sse": sse_fanout.main}

if __name__ == "__main__":
    args = sys.argv[1:]
    name = args.pop(0) if args and args[0] in BENCHMARKS else "sse"
    BENCHMARKS[name](args)
