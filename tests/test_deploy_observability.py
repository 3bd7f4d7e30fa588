"""deploy/grafana/lwa-accounts.json and deploy/prometheus/alerts.yaml cannot drift: both
parse, have the shape Grafana and Prometheus load, and every metric and label they name is
exported by a running app's /metrics. (promtool is not installed here; this is the check.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.web.conftest import make_settings, serve_app

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "lwa-accounts.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"

METRIC = re.compile(r"\blwa_accounts_[a-z0-9_]+")
MATCHERS = re.compile(r"\{([^}]*)\}")
GROUPING = re.compile(r"\bby\s*\(([^)]*)\)")
# PromQL's own words and Grafana's variables may follow "by (": only label names count.
BUILT_IN_LABELS = frozenset({"le"})


def dashboard_exprs() -> list[str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    exprs = []
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        for target in panel["targets"]:
            exprs.append(target["expr"])
    return exprs


def alert_exprs() -> list[str]:
    document: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    exprs = []
    names = set()
    for group in document["groups"]:
        assert group["name"]
        assert group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["alert"] not in names, "duplicate alert " + rule["alert"]
            names.add(rule["alert"])
            assert re.fullmatch(r"\d+[smh]", rule["for"])
            assert rule["annotations"]["summary"]
            exprs.append(rule["expr"])
    # What the operations doc promises: error rate, Amazon failures, latency.
    assert names >= {
        "LwaAccountsHighErrorRate",
        "LwaAccountsAmazonFailures",
        "LwaAccountsSlowRequests",
    }
    return exprs


def label_names(expr: str) -> set[str]:
    names = set()
    for matchers in MATCHERS.findall(expr):
        for matcher in matchers.split(","):
            name = re.split(r"=~|!~|!=|=", matcher, maxsplit=1)[0].strip()
            if name:
                names.add(name)
    for grouping in GROUPING.findall(expr):
        names.update(part.strip() for part in grouping.split(",") if part.strip())
    return names - BUILT_IN_LABELS


def balanced(expr: str) -> bool:
    depth = 0
    for char in expr:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


async def test_every_metric_and_label_the_dashboard_and_alerts_use_is_exported(
    tmp_path: Path,
) -> None:
    async with serve_app(make_settings(tmp_path)) as client:
        text = (await client.get("/metrics")).text
    exported: set[str] = set()
    labels: set[str] = set()
    for family in text_string_to_metric_families(text):
        exported.add(family.name)
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
        }.get(family.type, ())
        exported.update(family.name + suffix for suffix in suffixes)
        labels.update(label for sample in family.samples for label in sample.labels)
    # Labelled metrics with no sample yet name no label: take the definitions' labels too.
    from lwa_accounts import metrics

    for metric in vars(metrics).values():
        labels.update(getattr(metric, "_labelnames", ()))
    exprs = dashboard_exprs() + alert_exprs()
    assert len(exprs) >= 10
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used, "no metric referenced"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    assert {label for expr in exprs for label in label_names(expr)} <= labels
    assert all(balanced(expr) for expr in exprs)


def test_the_drift_check_catches_a_renamed_metric() -> None:
    expr = 'sum(rate(lwa_accounts_http_request_total{status=~"5.."}[5m]))'
    assert METRIC.findall(expr) == ["lwa_accounts_http_request_total"]
    assert label_names(expr) == {"status"}
    assert label_names("histogram_quantile(0.9, sum by (le, route) (rate(x[5m])))") == {"route"}
    assert not balanced("sum(rate(x[5m])")
