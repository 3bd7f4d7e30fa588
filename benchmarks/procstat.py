"""Linux /proc readings: CPU time and RSS of process groups and trees, TCP connections.

CPU is user + system time (fields 14 and 15 of /proc/PID/stat, in clock ticks), so a
busy, shared machine slows a run down without inflating what a request costs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Stat:
    pid: int
    ppid: int
    pgid: int
    utime: int
    stime: int
    cutime: int  # of children that exited and were waited for
    cstime: int
    rss_pages: int

    @property
    def own_ticks(self) -> int:
        return self.utime + self.stime

    @property
    def reaped_ticks(self) -> int:
        return self.cutime + self.cstime


def parse_stat(text: str) -> Stat:
    """One /proc/PID/stat line. The command name (field 2) may hold spaces and
    parentheses, so fields are counted from its closing parenthesis."""
    head, _, rest = text.rpartition(")")
    pid = int(head.split("(", 1)[0])
    fields = rest.split()  # fields[0] is field 3 (state)
    return Stat(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        utime=int(fields[11]),
        stime=int(fields[12]),
        cutime=int(fields[13]),
        cstime=int(fields[14]),
        rss_pages=int(fields[21]),
    )


def read_stat(pid: int, proc: Path = PROC) -> Stat | None:
    try:
        return parse_stat((proc / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None  # gone between the listing and the read


def all_stats(proc: Path = PROC) -> list[Stat]:
    stats = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name), proc)
            if stat is not None:
                stats.append(stat)
    return stats


def group(stats: Iterable[Stat], pgid: int) -> list[Stat]:
    return [s for s in stats if s.pgid == pgid]


def tree(stats: Iterable[Stat], root: int) -> list[Stat]:
    """``root`` and all its descendants."""
    by_parent: dict[int, list[Stat]] = {}
    found: list[Stat] = []
    listed = list(stats)
    for s in listed:
        by_parent.setdefault(s.ppid, []).append(s)
    todo = [s for s in listed if s.pid == root]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(by_parent.get(current.pid, []))
    return found


def cpu_ms(stats: Iterable[Stat], leader: int) -> dict[int, float]:
    """CPU milliseconds per process; the leader also carries its reaped children's time,
    so a worker that exits during a window is not lost."""
    out: dict[int, float] = {}
    for s in stats:
        ticks = s.own_ticks + (s.reaped_ticks if s.pid == leader else 0)
        out[s.pid] = ticks * 1000 / TICKS
    return out


def rss_kib(stats: Iterable[Stat]) -> dict[int, int]:
    return {s.pid: s.rss_pages * PAGE // 1024 for s in stats}


def delta_ms(before: dict[int, float], after: dict[int, float]) -> dict[int, float]:
    """CPU used between two readings, per process; a process born in between counts from 0."""
    return {pid: after[pid] - before.get(pid, 0.0) for pid in after}


# ---- TCP connections (/proc/net/tcp, /proc/net/tcp6) -----------------------------------------

ESTABLISHED, TIME_WAIT = "01", "06"


def tcp_peers_of(port: int, texts: Iterable[str]) -> set[tuple[int, int]]:
    """(local port, remote port) of every socket in /proc/net/tcp* text with ``port`` on
    either end, whatever its state. Both ends of a loopback connection are listed, and a
    closed connection stays in TIME_WAIT for a minute, so sampling a few times a second
    sees every connection opened to ``port``: the other end's port names it."""
    found: set[tuple[int, int]] = set()
    for text in texts:
        for line in text.splitlines()[1:]:
            parts = line.split()
            if len(parts) < 4:
                continue
            local = int(parts[1].rsplit(":", 1)[1], 16)
            remote = int(parts[2].rsplit(":", 1)[1], 16)
            if parts[3] == "0A":  # LISTEN
                continue
            if local == port or remote == port:
                found.add((local, remote))
    return found


def client_ports(port: int, texts: Iterable[str]) -> set[int]:
    """The ephemeral ports of the clients connected (or recently connected) to ``port``."""
    return {remote if local == port else local for local, remote in tcp_peers_of(port, texts)}


def read_tcp_tables(proc: Path = PROC) -> list[str]:
    texts = []
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError):  # no IPv6 in this namespace
            texts.append((proc / "net" / name).read_text())
    return texts


def loadavg(proc: Path = PROC) -> list[float]:
    return [float(x) for x in (proc / "loadavg").read_text().split()[:3]]
