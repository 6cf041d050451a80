"""A three-node Restate cluster (replicated metadata and log, replication 2) loses the leader of
a partition the orders use, SIGKILLed while orders flow: every accepted order completes, the
invariants hold, and the node, brought back, catches up on what it missed.

Runs its own cluster stack (not the session's single node, nor in the replay mode)."""

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shop.dev.stack import NO_CLIENT_LIMITS, Ports, Stack

from ..invariants import SUBJECT_WORD, Mail, money_kept, stripe_client
from .conftest import Restate
from .helpers import customer, eventually, final_status

SKU, PRICE_CENTS = "sticker-pack", 400
CLIENTS = 3
PAUSE = 0.3  # between one client's orders: a steady trickle, not a load test
PARTITIONS = 4  # fewer than Restate's 24: three nodes share two cores with everything else
# What a look at the cluster meets while nodes come and go: restatectl finding no node that
# answers (RuntimeError), or the admin API's SQL failing while a partition moves.
CLUSTER_BUSY = (RuntimeError, httpx.HTTPError)
# Every order this module's tests placed (order id, email, when accepted): all must complete.
ORDERS: list[tuple[str, str, float]] = []


@pytest.fixture(autouse=True)
def invariants() -> None:
    """This module runs on a stack of its own; its test checks the invariants itself."""


@pytest.fixture(autouse=True)
def whole_cluster(cluster: Stack) -> Iterator[None]:
    """Each test starts with every node up and in the cluster, and leaves it so whatever it
    killed (and however it failed): the next test never inherits a half-recovered cluster."""
    all_nodes_back(cluster)
    yield
    all_nodes_back(cluster)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        state=tmp_path_factory.mktemp("cluster"),
        ports=Ports.free(),
        cluster=3,
        restate_env={"RESTATE_DEFAULT_NUM_PARTITIONS": str(PARTITIONS)},
        service_env={"CANCEL_WINDOW_SECONDS": "1", **NO_CLIENT_LIMITS},
    )
    with stack.running(timeout=180):
        yield stack


class Shoppers:
    """Clients placing orders one after another until stopped. Each order has its own
    Idempotency-Key, and a client that gets no 202 (a 503 while Restate fails over, a 429,
    a dropped connection) sends the same request again, as a client of the API should: so
    every order a client meant to place is placed exactly once."""

    def __init__(self, gateway_url: str) -> None:
        self.gateway_url = gateway_url
        self.placed: list[tuple[str, str, float]] = []  # order id, email, when accepted
        self.retries = 0
        self.errors: list[BaseException] = []  # what a client thread died of
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.shop) for _ in range(CLIENTS)]

    def __enter__(self) -> "Shoppers":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, failure: type[BaseException] | None, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join()
        assert failure or not self.errors, self.errors

    def placed_since(self, moment: float) -> int:
        if self.errors:
            raise AssertionError(self.errors)
        return sum(1 for *_, at in self.placed if at > moment)

    def shop(self) -> None:
        with httpx.Client(base_url=self.gateway_url, timeout=30) as gateway:
            while not self.stopping.is_set():
                try:
                    self.place(gateway)
                except Exception as e:
                    self.errors.append(e)
                    return
                time.sleep(PAUSE)

    def place(self, gateway: httpx.Client) -> None:
        email, key = customer(), str(uuid.uuid4())
        body = {"customer_email": email, "items": [{"product_id": SKU, "quantity": 1}]}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                response = gateway.post("/api/orders", json=body, headers={"Idempotency-Key": key})
                if response.status_code == 202:
                    order = (response.json()["order_id"], email, time.monotonic())
                    self.placed.append(order)
                    ORDERS.append(order)
                    return
                assert response.status_code in (429, 503), response.text
            except httpx.TransportError:
                pass
            self.retries += 1
            time.sleep(0.2)
        raise AssertionError(f"order under key {key} never accepted")


def leader_of_busiest_partition(stack: Stack, restate: Restate) -> tuple[str, int] | None:
    """The node leading the partition that holds the most unfinished orders, and that
    partition (None while no order is unfinished): invocations carry their partition key
    (admin SQL), partitions their key range and leader, nodes their names (the cluster's own
    tables, through restatectl)."""
    keys = cluster_query(
        restate,
        "SELECT partition_key FROM sys_invocation_status "
        "WHERE target_service_name = 'OrderFulfilment' AND status != 'completed'",
    )
    partitions = stack.cluster_sql(
        "SELECT p.partition_id, p.start_key, p.end_key, n.name AS leader FROM partitions p "
        "JOIN nodes n ON n.plain_node_id = p.leader_plain_node_id"
    )
    orders = {
        p["partition_id"]: sum(p["start_key"] <= k["partition_key"] <= p["end_key"] for k in keys)
        for p in partitions
    }
    busiest = max(partitions, key=lambda p: orders[p["partition_id"]])
    return (busiest["leader"], busiest["partition_id"]) if orders[busiest["partition_id"]] else None


def cluster_query(restate: Restate, sql: str) -> list[dict[str, Any]]:
    """The admin API's SQL over the cluster: it asks every partition, and answers 500 while
    one of them is moving between nodes, so it is asked again until it answers."""
    return eventually(
        lambda: restate.query(sql), timeout=60, every=0.5, what=sql, retry_on=CLUSTER_BUSY
    )


def leader_of(stack: Stack, partition: int) -> str | None:
    rows = stack.cluster_sql(
        "SELECT n.name FROM partitions p JOIN nodes n ON n.plain_node_id = p.leader_plain_node_id"
        f" WHERE p.partition_id = {partition}"
    )
    return rows[0]["name"] if rows else None


def applied_lsns(stack: Stack, node: str | None = None) -> dict[int, int]:
    """Per partition, the log position applied: the furthest of any live replica, or `node`'s."""
    where = f"WHERE n.name = '{node}'" if node else ""
    rows = stack.cluster_sql(
        "SELECT s.partition_id, max(s.applied_log_lsn) AS lsn FROM partition_state s "
        f"JOIN nodes n ON n.plain_node_id = s.plain_node_id {where} GROUP BY s.partition_id"
    )
    return {r["partition_id"]: r.get("lsn", -1) for r in rows}  # none yet: a replica starting


def node_state(stack: Stack, node: str) -> dict[str, Any]:
    rows = stack.cluster_sql(
        "SELECT state, worker_state, metadata_server_state, storage_state FROM nodes "
        f"WHERE name = '{node}'"
    )
    return rows[0] if rows else {}


def in_cluster(state: dict[str, Any]) -> bool:
    """A node alive to the failure detector, working, and a member of the metadata quorum."""
    alive = state.get("state") == "alive" and state.get("worker_state") == "active"
    return alive and state.get("metadata_server_state") == "member"


def all_nodes_back(stack: Stack) -> None:
    """Starts every node that is down and waits until each is in the cluster and every
    partition has a leader."""
    stack.ctl("start", *stack.restate_nodes)  # those running say so and stay as they are

    def whole() -> bool:
        nodes = all(in_cluster(node_state(stack, n)) for n in stack.restate_nodes)
        led = stack.cluster_sql("SELECT leader_plain_node_id FROM partitions")
        return nodes and len(led) == PARTITIONS and all(p.get("leader_plain_node_id") for p in led)

    # restatectl fails while every node it asks is still starting
    eventually(whole, timeout=120, every=0.5, what="the whole cluster", retry_on=CLUSTER_BUSY)
    stack.wait_ready(timeout=90)


def assert_all_completed(stack: Stack, gateway: httpx.Client, restate: Restate) -> None:
    """Every order completes, run once, with its money kept and one confirmation mailed; stock
    is conserved with nothing left reserved (the e2e invariants, for orders that all complete)."""
    orders = ORDERS
    for order_id, _, _ in orders:
        assert final_status(gateway, order_id, timeout=120)["status"] == "completed"
    runs = cluster_query(
        restate,
        "SELECT count(*) AS n FROM sys_invocation WHERE target_service_name = "
        "'OrderFulfilment' AND target_handler_name = 'run'",
    )
    assert runs == [{"n": len(orders)}]
    stripe_api, mail = stripe_client(stack.stripe_url), Mail(stack.maildir)
    emails = {email for _, email, _ in orders}
    inboxes = eventually(lambda: (boxes := mail.inboxes()).keys() >= emails and boxes, timeout=60)
    for order_id, email, _ in orders:
        kept, held = money_kept(stripe_api, order_id)
        assert kept == PRICE_CENTS and not held, (order_id, kept, held)
        subjects = [m["Subject"] for m in inboxes[email].values()]
        assert len(subjects) == 1 and SUBJECT_WORD["completed"] in subjects[0], subjects
    products = gateway.get("/api/products").json()
    for product in products:
        assert product["reserved"] == 0, product
        assert product["stocked"] == product["available"] + product["sold"], product
    assert next(p["sold"] for p in products if p["product_id"] == SKU) == len(orders)


def test_a_killed_partition_leader_loses_no_order_and_catches_up_when_back(
    cluster: Stack,
) -> None:
    admin_headers = {"Authorization": f"Bearer {cluster.shared_env()['ADMIN_TOKEN']}"}
    with httpx.Client(base_url=cluster.gateway_url, timeout=30) as gateway:
        restock = gateway.put(
            f"/api/admin/products/{SKU}/stock", json={"quantity": 5000}, headers=admin_headers
        )
        assert restock.status_code == 200, restock.text

        with Shoppers(cluster.gateway_url) as shoppers:
            # Orders in flight on every partition, then the leader of the busiest one goes.
            restate = Restate(cluster.admin_url)
            eventually(lambda: shoppers.placed_since(0) >= 10, timeout=60)
            victim, partition = eventually(
                lambda: leader_of_busiest_partition(cluster, restate),
                what="an unfinished order",
                retry_on=CLUSTER_BUSY,
            )
            cluster.crash(victim)
            killed_at = time.monotonic()
            survivor = cluster.admin_urls[cluster.restate_nodes.index(victim) - 1]
            restate = Restate(survivor)

            # Another node takes the partition over, and orders go on being accepted.
            new_leader = eventually(
                lambda: (leader := leader_of(cluster, partition)) != victim and leader,
                timeout=60,
                retry_on=CLUSTER_BUSY,
            )
            eventually(lambda: shoppers.placed_since(killed_at) >= 10, timeout=60)
            # The failure detector declares it dead in its own time: poll, never assume.
            eventually(
                lambda: node_state(cluster, victim).get("state") == "dead",
                timeout=60,
                what=f"{victim} dead to the failure detector",
                retry_on=CLUSTER_BUSY,
            )

            # Back: it rejoins and applies everything written to the log while it was gone.
            missed = applied_lsns(cluster)
            cluster.ctl("start", victim)
            back_at = time.monotonic()

            def caught_up() -> dict[int, int] | None:
                state, lsns = node_state(cluster, victim), applied_lsns(cluster, victim)
                done = lsns and all(lsn >= missed.get(p, 0) for p, lsn in lsns.items())
                return lsns if in_cluster(state) and done else None

            replicas = eventually(caught_up, timeout=90, every=0.5, retry_on=CLUSTER_BUSY)
            caught_up_in = time.monotonic() - back_at
            eventually(lambda: shoppers.placed_since(back_at) >= 5, timeout=60)

        assert_all_completed(cluster, gateway, restate)

    # The node that came back answers for the whole cluster again, orders it missed included.
    orders = shoppers.placed
    placed_while_down = [o for o, _, at in orders if killed_at < at < back_at]
    with httpx.Client(base_url=cluster.ingress_urls[cluster.restate_nodes.index(victim)]) as node:
        for order_id in placed_while_down[:5]:
            output = node.get(f"/restate/workflow/OrderFulfilment/{order_id}/output")
            assert output.status_code == 200 and output.json()["status"] == "completed", output
    print(
        f"\n{len(orders)} orders ({len(placed_while_down)} while {victim} was down,"
        f" {shoppers.retries} retried requests); partition {partition} moved from {victim}"
        f" to {new_leader}; {victim} caught up in {caught_up_in:.1f}s (replicas {replicas})"
    )


def test_a_keyed_order_can_be_read_the_moment_its_id_is_returned(cluster: Stack) -> None:
    """A key's record (OrderKeys) starts the run with a message to the order's own partition,
    which another node may lead: the 202 must not come before Restate knows the run there."""
    with httpx.Client(base_url=cluster.gateway_url, timeout=30) as gateway:
        shoppers = Shoppers(cluster.gateway_url)
        for _ in range(10):
            shoppers.place(gateway)
            order_id = shoppers.placed[-1][0]
            assert gateway.get(f"/api/orders/{order_id}").status_code == 200, order_id


def test_the_gateway_reaches_the_cluster_through_another_node_when_its_first_is_down(
    cluster: Stack,
) -> None:
    """restate-1 is the first ingress and admin URL the gateway (and every service) is given."""
    cluster.crash("restate-1")
    with httpx.Client(base_url=cluster.gateway_url, timeout=30) as gateway:
        # ready again through the admin API of another node: every service registered
        eventually(lambda: gateway.get("/readyz").status_code == 200, timeout=60)
        shoppers = Shoppers(cluster.gateway_url)
        for _ in range(3):
            shoppers.place(gateway)
        for order_id, _, _ in shoppers.placed:
            assert final_status(gateway, order_id, timeout=90)["status"] == "completed"
        assert gateway.get("/api/products").status_code == 200
    all_nodes_back(cluster)
    with httpx.Client(base_url=cluster.gateway_url, timeout=30) as gateway:
        assert_all_completed(cluster, gateway, Restate(cluster.admin_urls[1]))
