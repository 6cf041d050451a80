import time

import pytest

from shop.gateway.admission import InFlight, Overloaded


def test_admits_up_to_the_limit_and_again_once_an_order_finishes() -> None:
    in_flight = InFlight(limit=2, max_age=60)
    for order_id in ("a", "b"):
        in_flight.admit(feed_connected=True)
        in_flight.start(order_id)
    with pytest.raises(Overloaded):
        in_flight.admit(feed_connected=True)
    in_flight.finish("a")
    in_flight.admit(feed_connected=True)


def test_an_order_never_seen_finishing_stops_counting_after_max_age() -> None:
    in_flight = InFlight(limit=1, max_age=0.05)
    in_flight.admit(feed_connected=True)
    in_flight.start("lost")
    with pytest.raises(Overloaded):
        in_flight.admit(feed_connected=True)
    time.sleep(0.06)
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
