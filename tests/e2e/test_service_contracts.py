"""What Restate holds for each service (its admin API: GET /services/{name}) is what
contracts/ records: the contract check (shop.dev.contracts, computed from the SDK without a
server) checks the schemas that Restate and the callers see."""

import httpx

from shop.dev import contracts
from shop.dev.stack import Stack


def test_restate_has_the_recorded_contracts(stack: Stack) -> None:
    for name, recorded in contracts.snapshots().items():
        service = httpx.get(f"{stack.admin_url}/services/{name}", timeout=10).json()
        handlers = {h["name"]: h for h in service["handlers"]}
        assert set(handlers) == set(recorded["handlers"]), name
        for handler, contract in recorded["handlers"].items():
            held = handlers[handler]
            where = f"{name}/{handler}"
            assert held.get("input_json_schema") == contract["input"], where
            assert held.get("output_json_schema") == contract["output"], where
