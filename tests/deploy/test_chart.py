"""The Helm chart: `helm lint`, and what `helm template` renders (probes, env, credentials only
through secretKeyRef, autoscaling, disruption budgets, the migration hook, graceful stop)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sagakit.settings import ServiceSettings

pytestmark = [
    pytest.mark.deploy,
    # The first test may build helm with `go install` (minutes on a fresh machine); each helm
    # call has its own 60 s timeout.
    pytest.mark.timeout(900),
]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "saga-shop"
PORTS = {"orchestrator": 8000, "inventory": 8001, "payment": 8002, "notification": 8003}
PARTICIPANTS = {"inventory", "payment", "notification"}
# Every service logs in to a managed broker with the same KAFKA_SASL_PASSWORD (optional).
SECRET_ENV = {
    "orchestrator": {
        "ORCHESTRATOR_DATABASE_URL",
        "REDIS_URL",
        "ADMIN_TOKEN",
        "KAFKA_SASL_PASSWORD",
    },
    "inventory": {"INVENTORY_DATABASE_URL", "KAFKA_SASL_PASSWORD"},
    "payment": {"PAYMENT_DATABASE_URL", "STRIPE_API_KEY", "KAFKA_SASL_PASSWORD"},
    "notification": {"NOTIFICATION_DATABASE_URL", "SMTP_PASSWORD", "KAFKA_SASL_PASSWORD"},
}
SECRET_NAME = "shop-saga-shop-credentials"

Manifest = dict[str, Any]


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def deployments(manifests: list[Manifest]) -> dict[str, Manifest]:
    """The Deployments by service (their pods' component label)."""
    return {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in of_kind(manifests, "Deployment").values()
    }


def container(workload: Manifest) -> Manifest:
    [only] = workload["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env(workload: Manifest) -> dict[str, Manifest]:
    return {e["name"]: e for e in container(workload)["env"]}


def test_helm_lint_passes(helm: Path) -> None:
    done = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), "-f", str(CHART / "ci" / "test-values.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_service_runs_from_the_one_image_by_its_command(manifests: list[Manifest]) -> None:
    found = deployments(manifests)
    assert set(found) == set(PORTS)
    for service, deployment in found.items():
        c = container(deployment)
        assert c["image"] == "registry.example.com/saga-shop:0.1.0-test"
        assert c["command"] == ["python", "-m", service]


def test_probes_ready_on_readyz_alive_on_healthz_on_the_service_port(
    manifests: list[Manifest],
) -> None:
    for service, deployment in deployments(manifests).items():
        c = container(deployment)
        assert c["ports"] == [{"name": "http", "containerPort": PORTS[service]}]
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert set(c["resources"]) == {"requests", "limits"}


def test_settings_bind_every_interface_and_name_the_external_infrastructure(
    manifests: list[Manifest], chart_values: dict[str, Any]
) -> None:
    for service, deployment in deployments(manifests).items():
        variables = env(deployment)
        assert variables["HTTP_HOST"]["value"] == "0.0.0.0"
        assert variables[f"{service.upper()}_HTTP_PORT"]["value"] == str(PORTS[service])
        assert (
            variables["KAFKA_BOOTSTRAP_SERVERS"]["value"]
            == chart_values["kafka"]["bootstrapServers"]
        )
        assert variables["LOG_FORMAT"]["value"] == "json"


def test_credentials_are_read_from_the_secret_by_secret_key_ref(
    manifests: list[Manifest],
) -> None:
    for service, deployment in deployments(manifests).items():
        variables = env(deployment)
        for name in SECRET_ENV[service]:
            assert "value" not in variables[name], f"{service}: {name} given in plain text"
            assert variables[name]["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME
            assert variables[name]["valueFrom"]["secretKeyRef"]["key"] == name
        # A service gets its own credentials, not the others'.
        others = set().union(*SECRET_ENV.values()) - SECRET_ENV[service]
        assert not others & set(variables), f"{service} sees another service's credentials"


def test_no_credential_appears_outside_the_secret(
    manifests: list[Manifest], chart_values: dict[str, Any]
) -> None:
    credentials = chart_values["secrets"]["values"]
    [secret] = of_kind(manifests, "Secret").values()
    assert secret["stringData"] == credentials
    for manifest in manifests:
        if manifest["kind"] == "Secret":
            continue
        text = json.dumps(manifest)
        for name, value in credentials.items():
            assert value not in text, f"{name} in plain text in {manifest['kind']}"


def test_the_chart_refuses_to_render_without_credentials(
    helm_template: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    done = helm_template(values=None)
    assert done.returncode != 0
    assert "secrets.values.ORCHESTRATOR_DATABASE_URL is required" in done.stderr


def test_an_existing_secret_is_referenced_and_none_is_created(
    render: Callable[..., list[Manifest]],
) -> None:
    manifests = render("secrets.existingSecret=shop-credentials-from-vault", values=None)
    assert of_kind(manifests, "Secret") == {}
    workloads = [*of_kind(manifests, "Deployment").values(), *of_kind(manifests, "Job").values()]
    for workload in workloads:
        refs = [e["valueFrom"]["secretKeyRef"] for e in env(workload).values() if "valueFrom" in e]
        assert refs
        assert {r["name"] for r in refs} == {"shop-credentials-from-vault"}


def test_migrations_run_in_a_pre_install_and_pre_upgrade_hook_after_the_secret(
    manifests: list[Manifest],
) -> None:
    [job] = of_kind(manifests, "Job").values()
    [secret] = of_kind(manifests, "Secret").values()
    hook = job["metadata"]["annotations"]
    assert hook["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        hook["helm.sh/hook-weight"]
    )
    assert container(job)["command"] == ["migrate"]
    variables = env(job)
    for service in PORTS:
        ref = variables[f"{service.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": SECRET_NAME, "key": f"{service.upper()}_DATABASE_URL"}


def test_participants_autoscale_on_cpu(manifests: list[Manifest]) -> None:
    hpas = of_kind(manifests, "HorizontalPodAutoscaler").values()
    targets = {h["spec"]["scaleTargetRef"]["name"]: h for h in hpas}
    by_service = {s: d["metadata"]["name"] for s, d in deployments(manifests).items()}
    assert set(targets) == {by_service[s] for s in PARTICIPANTS}
    for hpa in hpas:
        [metric] = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert hpa["spec"]["minReplicas"] >= 2
    # The HPA owns the replica count of an autoscaled Deployment.
    for service, deployment in deployments(manifests).items():
        assert ("replicas" in deployment["spec"]) == (service not in PARTICIPANTS)


def test_every_service_has_a_disruption_budget_over_its_pods(manifests: list[Manifest]) -> None:
    budgets = of_kind(manifests, "PodDisruptionBudget").values()
    selectors = [b["spec"]["selector"]["matchLabels"] for b in budgets]
    for deployment in deployments(manifests).values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert sum(all(labels.get(k) == v for k, v in s.items()) for s in selectors) == 1


def test_services_route_to_the_pods_and_metrics_are_scraped(manifests: list[Manifest]) -> None:
    services = of_kind(manifests, "Service").values()
    for service, deployment in deployments(manifests).items():
        [match] = [
            s
            for s in services
            if s["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        ]
        assert match["spec"]["ports"] == [
            {"name": "http", "port": PORTS[service], "targetPort": "http"}
        ]
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(PORTS[service])
        assert annotations["prometheus.io/path"] == "/metrics"
    [monitor] = of_kind(manifests, "ServiceMonitor").values()
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    # The labels the alert rules select and name services by, as the local Prometheus sets them.
    assert monitor["spec"]["endpoints"][0]["relabelings"] == [
        {"targetLabel": "system", "replacement": "saga-shop"},
        {
            "sourceLabels": ["__meta_kubernetes_service_label_app_kubernetes_io_component"],
            "targetLabel": "app",
        },
    ]


def test_the_promtool_tested_alert_rules_ship_as_a_prometheus_rule(
    manifests: list[Manifest], render: Callable[..., list[Manifest]]
) -> None:
    tested = ROOT / "deploy" / "prometheus" / "alerts.yml"
    assert (CHART / "files" / "alerts.yml").read_bytes() == tested.read_bytes(), (
        "the chart's copy of the alert rules differs: cp deploy/prometheus/alerts.yml "
        "deploy/helm/saga-shop/files/alerts.yml"
    )
    [rule] = of_kind(manifests, "PrometheusRule").values()
    assert rule["spec"] == yaml.safe_load(tested.read_text())  # Prometheus's {{ $labels }} kept
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert "SagaServiceDown" in {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    off = render("metrics.prometheusRule.enabled=false")
    assert not of_kind(off, "PrometheusRule")


def test_the_grace_period_outlasts_the_preStop_pause_and_the_shutdown_timeout(
    manifests: list[Manifest],
) -> None:
    for deployment in deployments(manifests).values():
        pod = deployment["spec"]["template"]["spec"]
        c = container(deployment)
        shutdown_s = float(env(deployment)["SHUTDOWN_TIMEOUT_S"]["value"])
        pause_s = float(c["lifecycle"]["preStop"]["exec"]["command"][1])
        # The service's own default, so the chart cannot drift from it silently.
        assert shutdown_s == ServiceSettings.model_fields["shutdown_timeout_s"].default
        # After the timeout the service still cancels stragglers (up to 1 s per stage, three
        # stages) and closes producer and engine: keep a margin of 5 s or more for that.
        assert pod["terminationGracePeriodSeconds"] >= pause_s + shutdown_s + 5


def test_pods_run_unprivileged_as_the_image_user(manifests: list[Manifest]) -> None:
    workloads = [*of_kind(manifests, "Deployment").values(), *of_kind(manifests, "Job").values()]
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["automountServiceAccountToken"] is False
        c = container(workload)
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
