"""The skeleton order of the benchmarks (bench/skeleton.py) keeps in step with the shop's: for
a happy-path order, the workflow's journal and the journal of every call it makes have the
same shape (entry kinds, names and count) in both. A change to the workflow that the skeleton
does not follow (a new step, call or state write) fails here. Runs a stack of its own."""

import importlib.util
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from shop.dev.stack import NO_CLIENT_LIMITS, Ports, Stack

from .helpers import customer

BENCH = Path(__file__).resolve().parents[2] / "bench"
Shape = list[tuple[str, str]]


def bench_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


skeleton = bench_module("skeleton")


@pytest.fixture(autouse=True)
def invariants() -> None:
    """This test runs on a stack of its own; the shared stack's invariants do not apply."""


@pytest.fixture(scope="module")
def skeleton_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        state=tmp_path_factory.mktemp("skeleton"),
        ports=Ports.free(),
        service_env={"CANCEL_WINDOW_SECONDS": "0", **NO_CLIENT_LIMITS},  # as bench/orders.py
    )
    with stack.running(timeout=90):
        processes = skeleton.start(stack)
        try:
            yield stack
        finally:
            skeleton.stop(processes)


def query(stack: Stack, sql: str) -> list[dict]:
    response = httpx.post(
        f"{stack.admin_url}/query", json={"query": sql}, headers={"accept": "application/json"}
    )
    response.raise_for_status()
    return response.json()["rows"]


def shape(stack: Stack, invocation_id: str) -> Shape:
    rows = query(
        stack, f"SELECT index, entry_type, name FROM sys_journal WHERE id = '{invocation_id}'"
    )
    return [(r["entry_type"], r.get("name") or "") for r in sorted(rows, key=lambda r: r["index"])]


def journals(stack: Stack, workflow: str, order_id: str) -> tuple[Shape, Counter]:
    """The run's journal, and its calls' (by handler, the service's prefix dropped)."""
    [run] = query(
        stack,
        "SELECT id FROM sys_invocation WHERE target_handler_name = 'run'"
        f" AND target_service_name = '{workflow}' AND target_service_key = '{order_id}'",
    )
    calls = query(
        stack,
        "SELECT id, target_service_name, target_handler_name FROM sys_invocation"
        f" WHERE invoked_by_id = '{run['id']}'",
    )
    called = Counter(
        (
            c["target_service_name"].removeprefix(skeleton.PREFIX),
            c["target_handler_name"],
            tuple(shape(stack, c["id"])),
        )
        for c in calls
    )
    return shape(stack, run["id"]), called


def test_the_skeleton_order_has_the_shop_orders_journal(skeleton_stack: Stack) -> None:
    stack = skeleton_stack
    with httpx.Client(timeout=30) as client:

        def shop_order() -> str:
            body = {
                "customer_email": customer(),
                "items": [{"product_id": "sticker-pack", "quantity": 1}],
            }
            placed = client.post(f"{stack.gateway_url}/api/orders", json=body)
            assert placed.status_code == 202, placed.text
            order_id = placed.json()["order_id"]
            done = client.get(
                f"{stack.ingress_url}/restate/workflow/OrderFulfilment/{order_id}/attach"
            )
            assert done.json()["status"] == "completed", done.text
            return order_id

        shop_order()  # the first reserve of a SKU also reads its older state layout: not this one
        shop_id = shop_order()
        skeleton_id = "ord_skeleton0journal0shape0001"
        started = client.post(
            f"{stack.ingress_url}/{skeleton.PREFIX}OrderFulfilment/{skeleton_id}/run/send",
            content=skeleton.order_body(skeleton_id),
            headers={"content-type": "application/json"},
        )
        assert started.status_code == 202, started.text
        url = f"{stack.ingress_url}/restate/workflow/{skeleton.PREFIX}OrderFulfilment"
        done = client.get(f"{url}/{skeleton_id}/attach")
        assert done.json()["status"] == "completed", done.text

    shop_run, shop_calls = journals(stack, "OrderFulfilment", shop_id)
    skeleton_run, skeleton_calls = journals(stack, f"{skeleton.PREFIX}OrderFulfilment", skeleton_id)
    assert len(shop_run) > 20 and sum(shop_calls.values()) >= 7  # a whole order
    assert skeleton_run == shop_run
    assert skeleton_calls == shop_calls


def test_loading_the_skeleton_renames_nothing() -> None:
    """The renaming is the skeleton's processes' (at their start): this process, which loaded
    the module, still calls the shop's services by their names."""
    from shop.shared import names

    assert (names.FULFILMENT, names.PAYMENTS) == ("OrderFulfilment", "Payments")
