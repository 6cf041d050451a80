"""The order page's list of steps, derived from the order's latest progress."""

from dataclasses import dataclass

from shop.shared.models import OrderStatus

STEPS = (
    ("received", "Order received"),
    ("authorized", "Payment held on your card"),
    ("reserved", "Stock reserved (cancellable)"),
    ("capturing", "Cancellation window closed"),
    ("charged", "Payment captured"),
    ("completed", "Confirmation emailed"),
)
STEP_INDEX = {key: i for i, (key, _) in enumerate(STEPS)}


@dataclass(frozen=True)
class Step:
    label: str
    state: str  # done | current | todo | failed | cancelled


def timeline(status: OrderStatus) -> list[Step]:
    if status.status == "completed":
        return [Step(label, "done") for _, label in STEPS]
    final = status.is_final  # failed or cancelled, here
    reached = status.result.last_step if final and status.result else status.step
    last = STEP_INDEX.get(reached or "", -1)
    steps = []
    for i, (_, label) in enumerate(STEPS):
        if i <= last:
            steps.append(Step(label, "done"))
        elif not final:
            steps.append(Step(label, "current" if i == last + 1 else "todo"))
    if final:
        reason = status.result.reason if status.result else status.message
        undone = "; what was done is undone" if last > 0 else ""
        steps.append(Step(f"{status.status.capitalize()}: {reason}{undone}", status.status))
    return steps
