"""The alert rules and the Grafana dashboard only use metrics the services export (a renamed
metric would otherwise silence its alert without a word), and every alert has a runbook."""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import sagakit.ops.metrics  # noqa: F401  # registers the shared metrics

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
README = (ROOT / "README.md").read_text()


def used(expr: str) -> set[str]:
    return set(re.findall(r"\bsaga_[a-z_]+", expr))


def alert_rules() -> list[dict[str, object]]:
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


def test_every_metric_in_the_alerts_and_dashboards_is_exported() -> None:
    names = set(REGISTRY._names_to_collectors)  # type: ignore[attr-defined]
    exprs = [str(rule["expr"]) for rule in alert_rules()]
    for dashboard in DASHBOARDS:
        exprs += [
            t["expr"] for p in json.loads(dashboard.read_text())["panels"] for t in p["targets"]
        ]
    missing = {name for expr in exprs for name in used(expr)} - names
    assert not missing, f"not exported by any service: {sorted(missing)}"
    assert DASHBOARDS


def test_every_alert_says_what_it_means_and_what_to_do() -> None:
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert isinstance(annotations, dict)
        assert annotations["summary"], rule["alert"]
        assert len(annotations["description"]) > 200, rule["alert"]
        assert rule["alert"] in README, f"{rule['alert']} is not in the README's runbook"  # type: ignore[operator]
