from types import SimpleNamespace

import pytest

from shop.gateway import admission
from shop.gateway.admission import InFlight, Overloaded
from shop.shared.contracts.fulfilment import OrderState, OrderStatus, Step


def test_admits_up_to_the_limit_and_again_once_an_order_finishes() -> None:
    in_flight = InFlight(limit=2, max_age=60)
    for order_id in ("a", "b"):
        in_flight.admit(feed_connected=True)
        in_flight.start(order_id)
    with pytest.raises(Overloaded):
        in_flight.admit(feed_connected=True)
    in_flight.finish("a")
    in_flight.admit(feed_connected=True)


def test_an_order_never_seen_finishing_stops_counting_after_max_age(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The test's clock: with a real one a stalled test thread would age the order early.
    now = [1000.0]
    monkeypatch.setattr(admission, "time", SimpleNamespace(monotonic=lambda: now[0]))
    in_flight = InFlight(limit=1, max_age=0.05)
    in_flight.admit(feed_connected=True)
    in_flight.start("lost")
    now[0] += 0.04
    with pytest.raises(Overloaded):
        in_flight.admit(feed_connected=True)
    now[0] += 0.02
    in_flight.admit(feed_connected=True)


def test_without_the_live_feed_admission_stays_open() -> None:
    in_flight = InFlight(limit=1, max_age=60)
    in_flight.admit(feed_connected=True)
    in_flight.start("a")
    in_flight.admit(feed_connected=False)


def test_requests_admitted_at_once_hold_their_places_until_started_or_abandoned() -> None:
    in_flight = InFlight(limit=2, max_age=60)
    in_flight.admit(feed_connected=True)
    in_flight.admit(feed_connected=True)
    with pytest.raises(Overloaded):
        in_flight.admit(feed_connected=True)
    in_flight.abandon()
    in_flight.admit(feed_connected=True)


def status(order_id: str, step: Step, state: OrderState = "running") -> OrderStatus:
    return OrderStatus(order_id=order_id, status=state, step=step, percent=50, message=step, seq=1)


def test_an_order_waiting_out_its_window_or_for_the_bank_does_not_count() -> None:
    in_flight = InFlight(limit=2, max_age=60)
    for order_id in ("a", "b"):
        in_flight.admit(feed_connected=True)
        in_flight.start(order_id)
    in_flight.observe(status("a", "reserved"))  # its cancellation window
    in_flight.observe(status("b", "authenticating"))  # the customer's bank
    in_flight.admit(feed_connected=True)
    in_flight.start("c")
    in_flight.admit(feed_connected=True)
    in_flight.start("d")
    with pytest.raises(Overloaded):
        in_flight.admit(feed_connected=True)
    in_flight.observe(status("a", "capturing"))  # working again, then done
    in_flight.observe(status("a", "completed", "completed"))
    in_flight.observe(status("c", "completed", "completed"))
    in_flight.admit(feed_connected=True)


def test_a_step_of_an_order_not_started_here_counts_nothing() -> None:
    in_flight = InFlight(limit=1, max_age=60)
    in_flight.observe(status("elsewhere", "reserved"))  # placed through another gateway
    in_flight.admit(feed_connected=True)
    in_flight.start("a")
    with pytest.raises(Overloaded):
        in_flight.admit(feed_connected=True)
