"""The results schema, the ratios, the generated table and the gate."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from benchmarks import report
from benchmarks.gate import check_gate
from benchmarks.pgcluster import statement_delta
from tests.benchmarks.sample import document


def test_a_written_document_passes_the_schema() -> None:
    doc = document({"returning_amazon": 3.0}, floor={"returning_amazon": 2.0})
    parsed = report.validate(doc)
    assert parsed.systems["ours"].scenarios["returning_amazon"].phases[0].latency_ms.p50 == 50.0


@pytest.mark.parametrize(
    "breaks",
    [
        lambda d: d.pop("load_average"),
        lambda d: d.__setitem__("schema", "something-else/9"),
        lambda d: d["load_average"].__setitem__("before", [1.0]),
        lambda d: d["systems"]["ours"]["scenarios"]["returning_amazon"]["phases"][0].pop("ok"),
        lambda d: d["systems"]["ours"]["scenarios"]["returning_amazon"].__setitem__("phases", []),
        lambda d: d["git"].pop("commit"),
    ],
)
def test_a_broken_document_is_refused(breaks: object) -> None:
    doc = copy.deepcopy(document({"returning_amazon": 3.0}))
    breaks(doc)  # type: ignore[operator]
    with pytest.raises(ValidationError):
        report.validate(doc)


def test_ratios_are_ours_over_the_peer_of_server_plus_postgres_cpu() -> None:
    doc = document({"returning_amazon": 3.0, "sign_out": 1.0}, floor={"returning_amazon": 1.0})
    # (3 + 1) / (1 + 1): the sign-out has no peer, so no ratio.
    assert doc["ratios"] == {"returning_amazon": {"floor": 2.0}}


def test_the_table_has_a_row_per_scenario_and_the_side_by_side_ratios() -> None:
    doc = document({"returning_amazon": 3.0, "session_check": 0.5}, floor={"returning_amazon": 1.0})
    text = report.tables(doc)
    assert (
        "| returning amazon | 3.00 + 1.00 | 200 | 50.0 / 100.0 / 100.0 | 6.0 | 1.0 | 0.0 | 100 |"
        in text
    )
    assert "| session check | 0.50 + 1.00 |" in text
    assert "| returning amazon | 3.00 + 1.00 | 1.00 + 1.00 | 2.00 |" in text
    assert "load average 1.00 before, 2.00 after" in text


def test_generated_text_goes_between_its_own_markers_only() -> None:
    begin, end = report.markers("quick")
    other_begin, other_end = report.markers("full-postgres")
    text = (
        f"# Benchmarks\n\nintro\n\n{begin}\nold table\n{end}\n\nmiddle\n\n"
        f"{other_begin}\nother table\n{other_end}\n"
    )
    once = report.replace_between_markers(text, "new table", "quick")
    assert once == text.replace("old table", "new table")
    assert report.replace_between_markers(once, "new table", "quick") == once
    added = report.replace_between_markers("# B\n", "t", "soak")
    begin, end = report.markers("soak")
    assert added == f"# B\n\n## Results: soak\n\n{begin}\nt\n{end}\n"


def test_the_gate_is_on_cpu_per_operation() -> None:
    good = document(
        {"returning_amazon": 2.0},
        social={"returning_amazon": 20.0},
        floor={"returning_amazon": 4.0},
    )
    assert check_gate(good) == []
    # Ours over its absolute goal (3 + 1 > 3.5) and over a third of social-auth's (4/6).
    bad = document({"returning_amazon": 3.0}, social={"returning_amazon": 5.0})
    failures = check_gate(bad)
    assert any("goal 3.5" in f for f in failures)
    assert any("ours/social" in f for f in failures)


def test_statements_per_operation_from_two_pg_stat_statements_readings() -> None:
    before = {"sessions": 5, "statements": {"1": ("SELECT a", 10), "2": ("BEGIN", 3)}}
    after = {
        "sessions": 7,
        "statements": {
            "1": ("SELECT a", 30),
            "2": ("BEGIN", 13),
            "3": ("INSERT b", 10),
            "4": ("COMMIT", 10),
        },
    }
    delta = statement_delta(before, after, ops=10)
    assert delta["statements_per_op"] == 5.0
    assert delta["statements_per_op_without_transaction_control"] == 3.0
    assert delta["new_db_connections"] == 2
    assert delta["top"][0] == {"query": "SELECT a", "per_op": 2.0}


def test_growth_and_soak_tables() -> None:
    doc = document({"returning_amazon": 3.0})
    per_size = {
        "seed_seconds": 1.5,
        "scenarios": {
            "returning_amazon": {
                "server_cpu_ms_per_op": 3.0,
                "pg_cpu_ms_per_op": 1.0,
                "statements_per_op": 9.0,
            },
            "session_check": {
                "server_cpu_ms_per_op": 0.5,
                "pg_cpu_ms_per_op": 0.1,
                "statements_per_op": 2.0,
            },
        },
        "rss_kib": {"1": 2048},
        "explain": {
            "SELECT a FROM sessions WHERE token_hash = $1": {
                "calls": 7,
                "scans": ["Index Scan using ix_t on sessions"],
            }
        },
    }
    doc["growth"] = {"sizes": {"1000": per_size, "1000000": per_size}}
    doc["soak"] = {
        "total": 20,
        "samples": [
            {"sign_ins": 0, "rss_kib": {"1": 1024}},
            {"sign_ins": 20, "rss_kib": {"1": 1536}, "server_cpu_ms_per_op": 3.25},
        ],
    }
    report.validate(doc)
    text = report.tables(doc)
    assert "| 1,000,000 | 1.5 | 3.00 + 1.00 | 0.50 + 0.10 | 9.0, 2.0 | 2 |" in text
    assert (
        "| 7 | `SELECT a FROM sessions WHERE token_hash = $1…` "
        "| Index Scan using ix_t on sessions |" in text
    )
    assert "| 20 | 1.5 | 3.25 |" in text
