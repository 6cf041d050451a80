"""CPU and memory of a process together with its descendants (a gateway's workers), from /proc."""

import os
from pathlib import Path


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *(p for child in children for p in process_tree(int(child)))]


def cpu_seconds(pid: int, descendants: bool = True) -> float:
    """User and system CPU seconds of the process (and its descendants)."""
    total = 0
    for each in process_tree(pid) if descendants else [pid]:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """Resident memory of the process and its descendants."""
    total = 0
    for each in process_tree(pid):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total
