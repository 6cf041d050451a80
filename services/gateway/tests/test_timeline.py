from shop.gateway.timeline import timeline
from shop.shared.models import FulfilmentResult, OrderStatus


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
