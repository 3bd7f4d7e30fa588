"""The /proc readers: stat lines, process trees and groups, CPU deltas, TCP tables."""

from __future__ import annotations

import os
import socket
import time

from benchmarks import procstat

# Field 2 may hold spaces and parentheses: counting fields from the left would break.
LINE = (
    "4242 (my (odd) name) S 1 4200 4200 0 -1 4194304 100 0 0 0 "
    "150 50 30 20 20 0 3 0 12345 1000000 2500 18446744073709551615"
)


def test_a_stat_line_is_read_after_the_command_name() -> None:
    stat = procstat.parse_stat(LINE)
    assert (stat.pid, stat.ppid, stat.pgid) == (4242, 1, 4200)
    assert (stat.utime, stat.stime, stat.cutime, stat.cstime) == (150, 50, 30, 20)
    assert stat.rss_pages == 2500


def test_the_leader_carries_its_reaped_children_and_only_it() -> None:
    leader = procstat.parse_stat(LINE)
    worker = procstat.parse_stat(LINE.replace("4242 (", "4243 ("))
    cpu = procstat.cpu_ms([leader, worker], leader=4242)
    tick = 1000 / procstat.TICKS
    assert cpu[4242] == (150 + 50 + 30 + 20) * tick
    assert cpu[4243] == (150 + 50) * tick


def test_delta_counts_a_process_born_in_the_window_from_zero() -> None:
    assert procstat.delta_ms({1: 10.0}, {1: 15.0, 2: 4.0}) == {1: 5.0, 2: 4.0}


def test_trees_and_groups() -> None:
    def stat(pid: int, ppid: int, pgid: int) -> procstat.Stat:
        return procstat.Stat(pid, ppid, pgid, 0, 0, 0, 0, 0)

    stats = [stat(10, 1, 10), stat(11, 10, 10), stat(12, 11, 99), stat(13, 1, 10), stat(14, 2, 14)]
    assert {s.pid for s in procstat.tree(stats, 10)} == {10, 11, 12}
    assert {s.pid for s in procstat.group(stats, 10)} == {10, 11, 13}


def test_our_own_cpu_time_grows_when_we_burn_cpu() -> None:
    before = procstat.read_stat(os.getpid())
    assert before is not None
    stop = time.process_time() + 0.15
    while time.process_time() < stop:
        sum(range(1000))
    after = procstat.read_stat(os.getpid())
    assert after is not None
    grown_ms = (after.own_ticks - before.own_ticks) * 1000 / procstat.TICKS
    assert 50 <= grown_ms <= 1000
    assert procstat.read_stat(2**22 + 12345) is None  # no such process


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout

   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: 0100007F:C351 0100007F:1F90 06 00000000:00000000 00:00000000 00000000     0        0 0 1
   4: 0100007F:C352 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 4 1
"""


def test_client_ports_include_both_ends_and_time_wait_but_not_the_listener() -> None:
    # Port 8080 = 0x1F90: one live connection (from 50000 = 0xC350, seen from both ends)
    # and one closed one still in TIME_WAIT (50001); 50002 talks to another port.
    assert procstat.client_ports(8080, [TCP]) == {50000, 50001}


def test_a_real_connection_shows_up_in_proc_net_tcp() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = server.accept()
            with accepted:
                assert client.getsockname()[1] in procstat.client_ports(
                    port, procstat.read_tcp_tables()
                )


def test_load_average_has_three_figures() -> None:
    assert len(procstat.loadavg()) == 3
