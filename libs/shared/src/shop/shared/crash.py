"""Test-only crash points: SIGKILL this process at a named point, once.

Off unless CRASH_POINTS_DIR is set (only the e2e tests set it). A test arms a point by
creating the file CRASH_POINTS_DIR/<point>; the process that reaches the point removes the
file (so it crashes once) and kills itself, the way a machine dies between two lines.
"""

import os
import signal
from pathlib import Path

_DIR = os.environ.get("CRASH_POINTS_DIR")


def crash_point(name: str) -> None:
    if _DIR is None:
        return
    try:
        (Path(_DIR) / name).unlink()
    except FileNotFoundError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
