"""The chaos run, short: ~30 s of orders of every kind under SIGKILL, on a stack of its own;
every accepted order ends as it should and the invariants hold (see chaos.py)."""

from pathlib import Path

import pytest

from .chaos import KINDS, run_on_new_stack

pytestmark = pytest.mark.e2e


def test_orders_survive_random_kills_of_every_component(tmp_path: Path) -> None:
    report = run_on_new_stack(tmp_path, seconds=30, kill_every=(2.0, 4.0), settle=60, seed=None)
    print(report.render())
    assert not report.violations, report.render()
    placed = {o.kind for o in report.orders if o.accepted}
    assert placed == set(KINDS), report.render()
    assert report.kills.total() >= 5, report.render()  # the chaos did happen
