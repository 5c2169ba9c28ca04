"""The CPU cores this process may use (its affinity mask, not the machine's count:
a container or `taskset` may allow fewer)."""
from __future__ import annotations

import os


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
