from typing import get_args

from shop.gateway.timeline import STEPS, timeline
from shop.shared.contracts.fulfilment import FINAL_STATES, FulfilmentResult, OrderStatus, Step


def status(**fields: object) -> OrderStatus:
    base = {
        "order_id": "o",
        "status": "running",
        "step": "authorized",
        "percent": 25,
        "message": "m",
        "seq": 2,
    }
    return OrderStatus.model_validate({**base, **fields})


def test_running_order_marks_done_current_and_todo() -> None:
    states = [s.state for s in timeline(status())]
    assert states == ["done", "done", "current", "todo", "todo", "todo"]


def test_completed_order_has_every_step_done() -> None:
    assert {s.state for s in timeline(status(status="completed", step="completed"))} == {"done"}


def test_failed_order_shows_the_steps_reached_then_the_reason() -> None:
    result = FulfilmentResult(
        order_id="o", status="failed", reason="out of stock", last_step="authorized"
    )
    steps = timeline(status(status="failed", step="failed", result=result))
    assert [s.state for s in steps] == ["done", "done", "failed"]
    assert "out of stock" in steps[-1].label


def test_an_order_waiting_for_the_bank_shows_that_step_as_current() -> None:
    steps = timeline(status(step="authenticating", percent=15))
    assert [(s.label, s.state) for s in steps[:3]] == [
        ("Order received", "done"),
        ("Confirm the payment with your bank", "current"),
        ("Payment held on your card", "todo"),
    ]
    assert {s.state for s in steps[3:]} == {"todo"}


def test_the_bank_step_is_not_listed_once_past_it_nor_for_a_failure_there() -> None:
    labels = [s.label for s in timeline(status())]
    assert "Confirm the payment with your bank" not in labels
    result = FulfilmentResult(
        order_id="o",
        status="failed",
        reason="payment authentication failed",
        last_step="authenticating",
    )
    steps = timeline(status(status="failed", step="failed", result=result))
    assert [s.state for s in steps] == ["done", "failed"]
    assert "authentication failed" in steps[-1].label


def test_the_page_lists_every_step_a_run_reports_in_their_order() -> None:
    on_the_way = [step for step in get_args(Step) if step != "pending"]
    listed = [step for step, _ in STEPS]
    ends = [step for step in on_the_way if step in FINAL_STATES - {"completed"}]
    assert listed + ends == on_the_way
