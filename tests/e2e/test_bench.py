"""The orders benchmark runs end to end in a short version (`./task bench -- orders` is the
long one): every phase (the no-op floor, the skeleton, the shop unloaded, closed loop and
half load, the open loop) and its closing RATIO line. Its figures are not asserted: a bench
measures, a test does not time. Runs a stack of its own (the bench starts it)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHORT = ["--clients", "4", "--seconds", "3", "--overload-seconds", "3"]
SHORT += ["--floor-seconds", "2", "--unloaded", "5"]
RATIO = (
    r"^RATIO shop/skeleton throughput=[\d.]+ p50=[\d.]+"
    r" skeleton/noop throughput=[\d.]+ backlog=[\d.]+$"
)


@pytest.fixture(autouse=True)
def invariants() -> None:
    """The bench runs a stack of its own; the shared stack's invariants do not apply."""


def test_the_orders_bench_runs_every_phase_and_prints_its_ratios() -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "orders.py"), *SHORT],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    phases = ("no-op handler:", "unloaded, one at a time", "closed loop, 4 clients", "skeleton:")
    for phase in (*phases, "shop:", "shop CPU per order", "the order book's lag"):
        assert phase in run.stdout, (phase, run.stdout)
    assert "open loop at 3x" in run.stdout and "half load" in run.stdout, run.stdout
    assert re.search(RATIO, run.stdout, re.M), run.stdout
