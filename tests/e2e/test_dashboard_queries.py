"""Every query of every Grafana dashboard (deploy/observability/dashboards/*.json), with
Grafana's variables filled in, answered by the stack's own Prometheus with at least one series
once an order completed (followed live, as its order page does) and one was declined: a panel
over a misspelt name, a label the series do not have, or a counter that only appears when
something fails would stay empty."""

import httpx
import pytest

from shop.dev.stack import Stack

from ..observability.test_dashboard import DASHBOARDS, load, promql, targets
from .helpers import eventually, final_status, place

STICKERS = [{"product_id": "sticker-pack", "quantity": 1}]


@pytest.fixture(scope="module")
def orders_done(stack: Stack, gateway: httpx.Client) -> None:
    done = place(gateway, STICKERS)
    declined = place(gateway, STICKERS, payment_method="pm_card_chargeDeclined")
    with gateway.stream("GET", f"/api/orders/{done}/events") as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())  # the gateway ends the stream at the final event
    assert "event: complete" in lines
    final_status(gateway, done)
    final_status(gateway, declined)


def query(stack: Stack, promql: str) -> list[dict]:
    """An instant query's series; AssertionError (with Prometheus's words) if it fails."""
    response = httpx.get(
        f"{stack.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10
    )
    body = response.json()
    assert body["status"] == "success", (promql, body)
    return body["data"]["result"]


def test_every_dashboard_query_returns_series(stack: Stack, orders_done: None) -> None:
    queries = {
        f"{path.name}: {panel['title']} [{target['refId']}]": promql(target["expr"])
        for path in DASHBOARDS
        for panel, target in targets(load(path))
    }
    assert queries
    pending = dict(queries)

    def all_answered() -> bool:
        for name, expr in list(pending.items()):
            if query(stack, expr):
                del pending[name]
        return not pending

    try:
        eventually(all_answered, timeout=60, every=1, what="every dashboard query answered")
    except TimeoutError:
        empty = "\n".join(f"  {name}: {expr}" for name, expr in pending.items())
        pytest.fail(f"{len(pending)} dashboard queries without any series after 60 s:\n{empty}")
