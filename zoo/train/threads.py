"""How many CPU threads to train with.

torch's intra-op threads spin-wait for each other at the end of every parallel
op, so when another process keeps a core busy, a thread per core makes small
models several times slower (measured here: an MLP epoch went from 0.5 to 4 ms a
batch on 2 shared cores). "auto" therefore takes the cores this process may use
minus those other processes kept busy while the dataset was loading, at least 1.
The count is saved with the run, so a resumed run uses the same one (results
differ in the last bits between thread counts).
"""
from __future__ import annotations

import time

from ..cores import usable_cores

MIN_WINDOW = 0.1  # seconds of CPU accounting needed for a usable measurement


class CpuWatch:
    """Measures how busy the other processes keep the machine between start and `others_busy()`."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.start = _snapshot()

    def others_busy(self) -> float | None:
        """Cores' worth of CPU used by other processes since start; None when unknown (not Linux)."""
        if self.start is None:
            return None
        wait = MIN_WINDOW - (time.monotonic() - self.t0)
        if wait > 0:
            time.sleep(wait)
        end = _snapshot()
        if end is None:
            return None
        busy, total, ours = (e - s for e, s in zip(end[:3], self.start[:3]))
        if total <= 0:
            return None
        return max(0.0, (busy - ours) / total * end[3])


def auto_threads(watch: CpuWatch | None) -> int:
    cores = usable_cores()
    others = watch.others_busy() if watch is not None else None
    return cores if others is None else max(1, min(cores, round(cores - others)))


def _snapshot() -> tuple[int, int, int, int] | None:
    """(busy jiffies of all CPUs, all jiffies, this process's jiffies, number of CPUs) from /proc."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
        values = [int(v) for v in lines[0].split()[1:9]]  # user nice system idle iowait irq softirq steal
        cpus = sum(1 for ln in lines if ln.startswith("cpu") and ln[3:4].isdigit())
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ours = int(fields[11]) + int(fields[12])  # utime + stime of every thread of this process
    except (OSError, ValueError, IndexError):
        return None
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values), ours, max(cpus, 1)
