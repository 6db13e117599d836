"""CPU and memory of processes, read from /proc (Linux), so a phase can be charged to the process
that did the work: the worker, the dev server, or the bench driver (sandboxes, endpoint, customer)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after "pid (comm)": state is field 3, utime 14, stime 15 (1-based) → indices 11, 12 here
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _status_kb(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def rss_bytes(pid: int) -> int:
    return _status_kb(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    """The kernel's high-water mark of the resident set (VmHWM) over the process's whole life."""
    return _status_kb(pid, "VmHWM") * 1024


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(entry))
    return out


def command_of(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace").strip()


def machine_busy_seconds() -> float:
    """CPU time spent by every process on the machine (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        parts = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in parts[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


class CpuMeter:
    """CPU seconds of named processes (and of the whole machine) between ``start()`` and ``stop()``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        now = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        now["machine"] = machine_busy_seconds()
        return now

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        end = self._read()
        used = {name: end[name] - self._start[name] for name in end}
        # CPU the machine spent outside the processes of this benchmark (other users of the box).
        used["other"] = max(0.0, used["machine"] - sum(v for k, v in used.items() if k != "machine"))
        return used


@contextlib.asynccontextmanager
async def rss_peaks(pids: Iterable[int], every: float = 0.05) -> AsyncIterator[dict[int, int]]:
    """Sample the resident set of ``pids`` while the block runs; yields {pid: peak bytes}."""
    peaks = {pid: rss_bytes(pid) for pid in pids}

    async def sample() -> None:
        while True:
            for pid in peaks:
                with contextlib.suppress(OSError):
                    peaks[pid] = max(peaks[pid], rss_bytes(pid))
            await asyncio.sleep(every)

    task = asyncio.create_task(sample())
    try:
        yield peaks
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for pid in peaks:
            with contextlib.suppress(OSError):
                peaks[pid] = max(peaks[pid], rss_bytes(pid))
