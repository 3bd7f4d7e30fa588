"""Which index each hot query uses: EXPLAIN of the generic plan of every statement
pg_stat_statements saw most often in the benchmark's database."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from benchmarks.pgcluster import Cluster

SCAN = re.compile(
    r"(Index Only Scan using \S+ on \S+|Index Scan using \S+ on \S+"
    r"|Bitmap Index Scan on \S+|Seq Scan on \S+)"
)
PLANNABLE = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


def scans(plan: str) -> list[str]:
    """The access paths of a text plan, in order: index scans by name, sequential scans."""
    return SCAN.findall(plan)


async def explain_all(cluster: Cluster, db_name: str, top: int = 15) -> dict[str, Any]:
    connection: asyncpg.Connection = await cluster.connect(db_name)
    found: dict[str, Any] = {}
    try:
        rows = await cluster.fetch(  # the extension's view lives in the postgres database
            "postgres",
            "SELECT s.query, s.calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = $1 ORDER BY s.calls DESC",
            db_name,
        )
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        for row in rows:
            query: str = row["query"]
            if not query.lstrip().upper().startswith(PLANNABLE) or "pg_" in query:
                continue
            if len(found) >= top:
                break
            params = len(set(re.findall(r"\$(\d+)", query)))
            try:
                async with connection.transaction():  # never commits an INSERT's plan
                    await connection.execute(f"PREPARE bench_q AS {query}")
                    args = ", ".join(["NULL"] * params)
                    lines = await connection.fetch(
                        f"EXPLAIN EXECUTE bench_q({args})" if params else "EXPLAIN EXECUTE bench_q"
                    )
                    await connection.execute("DEALLOCATE bench_q")
                    raise _Rollback
            except _Rollback:
                plan = "\n".join(r[0] for r in lines)
            except asyncpg.PostgresError as exc:
                plan = f"(not explained: {exc})"
            found[query[:400]] = {"calls": int(row["calls"]), "scans": scans(plan), "plan": plan}
    finally:
        await connection.close()
    return found


class _Rollback(Exception):
    pass
