"""One trace per order, from the gateway's request down to the Stripe and SMTP calls, with
no handler span twice when Restate replays the workflow. Runs its own stacks, exporting to
an OTLP receiver in this process."""

from collections.abc import Iterator

import httpx
import pytest

from shop.dev.stack import NO_CLIENT_LIMITS, Ports, Stack

from .conftest import MODES
from .helpers import customer, eventually, final_status
from .otlp import Collector, Span

SERVICES = {"gateway", "fulfilment", "payments", "inventory", "email"}
# Our own step spans and how often one order makes each (once, whatever the replays).
STEPS = {
    "stripe authorize": 1,
    "stripe capture": 1,
    "inventory reserve": 2,
    "inventory commit": 2,
    "smtp send": 1,
    "progress push": 6,
}


@pytest.fixture(autouse=True)
def invariants() -> None:
    """These tests run on stacks of their own; the shared stack's invariants do not apply."""


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    collector = Collector()
    yield collector
    collector.stop()


@pytest.fixture(scope="module", params=sorted(MODES))
def traced(
    request: pytest.FixtureRequest, collector: Collector, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = Stack(
        state=tmp_path_factory.mktemp(f"traced-{request.param}"),
        ports=Ports.free(),
        restate_env=MODES[request.param],
        service_env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_RESOURCE_ATTRIBUTES": "service.namespace=shop,deployment.environment=test",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "CANCEL_WINDOW_SECONDS": "0",
            **NO_CLIENT_LIMITS,
        },
    )
    with stack.running(timeout=90):
        yield stack


def url(span: Span) -> str:
    """The HTTP client span's URL, under the new or the old semantic-convention name."""
    return str(span.attributes.get("url.full") or span.attributes.get("http.url") or "")


def ancestors(span: Span, by_id: dict[str, Span]) -> list[Span]:
    chain = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain


def test_one_order_is_one_connected_trace_across_every_service(
    traced: Stack, collector: Collector
) -> None:
    email = customer()
    with httpx.Client(base_url=traced.gateway_url, timeout=30) as gateway:
        body = {
            "customer_email": email,
            "items": [
                {"product_id": "mug-classic", "quantity": 1},
                {"product_id": "cap-navy", "quantity": 1},
            ],
        }
        order_id = gateway.post("/api/orders", json=body).json()["order_id"]
        status = final_status(gateway, order_id, timeout=60)
    assert status["status"] == "completed"
    trace_id = status["trace_id"]  # what the order page links to in Jaeger
    assert trace_id

    def complete() -> list[Span] | None:
        spans = collector.trace(trace_id)
        names = {s.name for s in spans}
        services = {s.service for s in spans}
        ready = services >= SERVICES and set(STEPS) <= names
        ready = ready and any("restate" in s.service.lower() for s in spans)
        # Spans arrive in batches, each process on its own schedule: wait until the last
        # parent (Restate's invocation attempt of the run ends last) has come in too.
        ids = {s.span_id for s in spans}
        ready = ready and sum(s.parent_id not in ids for s in spans) == 1
        return spans if ready else None

    spans = eventually(complete, timeout=60, every=0.5)
    by_id = {s.span_id: s for s in spans}

    roots = [s for s in spans if s.parent_id not in by_id]
    assert len(roots) == 1, [(r.service, r.name, r.parent_id) for r in roots]
    root = roots[0]
    assert (root.service, root.name) == ("gateway", "POST /api/orders")

    stripe_calls = [s for s in spans if s.service == "payments" and "/v1/payment_intents" in url(s)]
    assert stripe_calls, "the Stripe HTTP calls are in the trace"
    smtp = next(s for s in spans if s.name == "smtp send")
    for leaf in [*stripe_calls, smtp]:
        chain = ancestors(leaf, by_id)
        assert chain[-1] == root, f"{leaf.name} reaches the gateway's request"
        assert any("restate" in s.service.lower() for s in chain), "through Restate's spans"

    for name, count in STEPS.items():
        mine = [s for s in spans if s.name == name]
        assert len(mine) == count, f"{name}: {len(mine)} spans, expected {count} (no replays)"
        assert all(s.attributes.get("shop.order.id") == order_id for s in mine)

    # Log lines inside the workflow carry its trace (the attempt's span when no step's is open).
    log = (traced.state / "logs" / "fulfilment.log").read_text()
    done = [line for line in log.splitlines() if f"order {order_id}: completed" in line]
    assert len(done) == 1 and f"trace_id={trace_id}" in done[0], done

    for s in spans:  # no personal data in any span
        assert all(email not in str(v) for v in s.attributes.values()), (s.name, s.attributes)


def test_order_metrics_are_exported(traced: Stack, collector: Collector) -> None:
    wanted = {"shop.orders.started", "shop.orders.finished", "shop.step.duration"}
    eventually(lambda: wanted <= collector.metric_names, timeout=30, every=0.5)
