"""Offline checks of everything under deploy/ that is not Python: Prometheus rules and configs
(with promtool), the Grafana dashboard, the Compose file, the Dockerfile and the Kubernetes
manifests. Nothing here needs a container engine or a network."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.settings import Settings
from tests.integration.ops.promql import metric_names_in, series_names

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
DOCKER = DEPLOY / "docker"
K8S = DEPLOY / "k8s"
SERVICE_IMAGE = re.compile(r"comment-moderation:\d+\.\d+\.\d+")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: install Debian's `prometheus` package")
    return path


def run_promtool(*args: str) -> str:
    result = subprocess.run(
        [promtool(), *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_all_yaml(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def rules() -> Iterator[dict[str, Any]]:
    for name in ("recording.yml", "alerts.yml"):
        for group in load_yaml(PROMETHEUS / name)["groups"]:
            yield from group["rules"]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


# --- Prometheus ---------------------------------------------------------------------------


def test_alert_and_recording_rules_pass_promtool() -> None:
    out = run_promtool(
        "check", "rules", "deploy/prometheus/alerts.yml", "deploy/prometheus/recording.yml"
    )
    assert "SUCCESS" in out


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.local.yml"])
def test_prometheus_config_passes_promtool(config: str) -> None:
    out = run_promtool("check", "config", f"deploy/prometheus/{config}")
    assert "2 rule files found" in out


def test_alert_rules_fire_as_their_unit_tests_expect() -> None:
    out = run_promtool("test", "rules", "deploy/prometheus/tests/alerts_test.yml")
    assert "SUCCESS" in out


def test_every_alert_has_for_severity_summary_and_description() -> None:
    alerts = [rule for rule in rules() if "alert" in rule]
    assert {a["alert"] for a in alerts} >= {
        "ModerationConsumerLagGrowing",
        "ModerationDeadLetterRateHigh",
        "ModerationReviewQueueOverSLA",
        "ModerationNoDecisions",
        "ModerationOutboxBacklogHigh",
        "ModerationOutboxBacklogGrowing",
    }
    for alert in alerts:
        assert re.fullmatch(r"\d+[smh]", alert.get("for", "")), alert["alert"]
        assert alert["labels"]["severity"] in {"page", "ticket"}, alert["alert"]
        assert alert["annotations"]["summary"].strip(), alert["alert"]
        assert alert["annotations"]["description"].strip(), alert["alert"]


def test_rules_use_only_metrics_the_service_exports() -> None:
    known = series_names() | recorded_names()
    for rule in rules():
        unknown = metric_names_in(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: {unknown}"


def test_scrape_configs_point_at_the_service_port_and_metrics_path() -> None:
    compose = load_yaml(PROMETHEUS / "prometheus.yml")
    [job] = [j for j in compose["scrape_configs"] if j["job_name"] == "moderation"]
    assert job["metrics_path"] == "/metrics"
    [dns] = job["dns_sd_configs"]
    assert dns["names"] == ["moderation"]  # the Compose service name
    assert dns["port"] == 8080
    local = load_yaml(PROMETHEUS / "prometheus.local.yml")
    [local_job] = local["scrape_configs"]
    assert local_job["static_configs"][0]["targets"] == ["127.0.0.1:8080"]  # `make run`


# --- Grafana ------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    doc = json.loads((GRAFANA / "moderation-dashboard.json").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def test_dashboard_panels_have_unique_ids_and_queries() -> None:
    panels = dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_dashboard_queries_use_only_exported_metrics() -> None:
    known = series_names() | recorded_names()
    doc = dashboard()
    queries = [
        (panel["title"], target["expr"])
        for panel in doc["panels"]
        for target in panel.get("targets", [])
    ]
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            queries.append((variable["name"], variable["definition"]))
    used: set[str] = set()
    for title, expr in queries:
        names = metric_names_in(expr)
        assert names, f"{title}: no metric in {expr!r}"
        assert names <= known, f"{title}: unknown {names - known}"
        used |= names
    base = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    missing = {n for n in series_names() if n.startswith("moderation_")} - used
    missing = {n for n in missing if re.sub(r"_(bucket|sum|count)$", "", n) not in base}
    assert not missing, f"metrics with no panel: {sorted(missing)}"


def test_grafana_provisioning_matches_compose_mounts() -> None:
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yaml")
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "moderation.yaml")
    [provider] = providers["providers"]
    mounts = compose()["services"]["grafana"]["volumes"]
    targets = {m.split(":")[1] for m in mounts}
    assert f"{provider['options']['path']}/moderation-dashboard.json" in targets


# --- Compose and Dockerfile ---------------------------------------------------------------


def compose() -> dict[str, Any]:
    doc = load_yaml(DOCKER / "compose.yaml")
    assert isinstance(doc, dict)
    return doc


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers which names `Settings.from_env` asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self._values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _interpolate(value: str) -> str:
    """Compose's ${NAME:-default}, with the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def assert_valid_settings(env: Mapping[str, str], where: str) -> Settings:
    """Every MODERATION_* name is one the service reads, and the values pass validation."""
    moderation = {k: _interpolate(str(v)) for k, v in env.items() if k.startswith("MODERATION_")}
    recording = RecordingEnv(moderation)
    settings = Settings.from_env(recording, cwd=Path("/"))
    unread = set(moderation) - recording.asked
    assert not unread, f"{where}: settings the service never reads: {sorted(unread)}"
    return settings


def test_compose_runs_two_replicas_after_topics_model_and_database() -> None:
    services = compose()["services"]
    assert set(services) >= {
        "kafka",
        "postgres",
        "create-topics",
        "train-model",
        "moderation",
        "prometheus",
        "grafana",
    }
    app = services["moderation"]
    assert app["deploy"]["replicas"] == 2
    assert app["depends_on"]["create-topics"]["condition"] == "service_completed_successfully"
    assert app["depends_on"]["train-model"]["condition"] == "service_completed_successfully"
    assert app["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["create-topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["create-topics"]["command"][0] == "create-topics"
    assert app["read_only"] is True
    assert "INSTANCE_ID" not in " ".join(app["environment"])  # host name = container id
    model_mounts = [v for v in app["volumes"] if v.startswith("model:")]
    assert model_mounts == ["model:/models:ro"]
    assert "model:/models" in services["train-model"]["volumes"]


def test_compose_service_settings_are_valid_and_listen_on_all_interfaces() -> None:
    services = compose()["services"]
    for name in ("moderation", "create-topics", "train-model"):
        settings = assert_valid_settings(services[name]["environment"], name)
        assert settings.http_host == "0.0.0.0"  # noqa: S104 - inside a container
        assert settings.kafka_bootstrap == "kafka:9092"
        assert settings.database_url.startswith("postgresql://")
        assert settings.tokens_file == Path("/run/secrets/moderation-tokens")
        assert settings.model_path == Path("/models/current")


def test_every_image_is_pinned_and_the_service_image_is_one_name() -> None:
    services = compose()["services"]
    own = {name for name, s in services.items() if "build" in s}
    assert own == {"create-topics", "train-model", "moderation"}
    assert len({services[name]["image"] for name in own}) == 1
    for name, service in services.items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo, f"{name}: {image} has no tag"
        assert re.fullmatch(r"v?\d+(\.\d+)+(-[a-z]+)?", tag), f"{name}: {image} is not pinned"
        if name in own:
            assert SERVICE_IMAGE.fullmatch(image)
    for manifest in k8s_documents():
        for container in pod_containers(manifest):
            assert container["image"] == services["moderation"]["image"]


def test_compose_mounts_the_prometheus_files_that_exist() -> None:
    prometheus = compose()["services"]["prometheus"]
    for mount in prometheus["volumes"]:
        source = mount.split(":")[0]
        if source.startswith("."):
            assert (DOCKER / source).resolve().is_file(), source


def dockerfile() -> list[str]:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    return text.replace("\\\n", " ").splitlines()


def test_dockerfile_pins_python_runs_non_root_and_checks_healthz_without_curl() -> None:
    lines = dockerfile()
    [base] = [ln for ln in lines if ln.startswith("ARG PYTHON_IMAGE=")]
    assert re.fullmatch(r"ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm", base)
    assert all(ln.split()[1].startswith("${PYTHON_IMAGE}") for ln in lines if ln.startswith("FROM"))
    [user] = [ln for ln in lines if ln.startswith("USER ")]
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    [health] = [ln for ln in lines if ln.startswith("HEALTHCHECK")]
    assert "/healthz" in health
    assert "urllib.request" in health
    assert "curl" not in health
    assert any(ln.startswith("EXPOSE 8080") for ln in lines)
    assert any("MODERATION_HTTP_HOST=0.0.0.0" in ln for ln in lines)
    assert 'ENTRYPOINT ["moderation"]' in lines


def test_the_image_holds_what_the_service_imports() -> None:
    copied = {ln.split()[1] for ln in dockerfile() if ln.startswith("COPY") and "--from" not in ln}
    assert copied >= {"pyproject.toml", "service", "classifier"}
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert {"!service/", "!classifier/", "!pyproject.toml", "!README.md"} <= set(ignore)


# --- Kubernetes ---------------------------------------------------------------------------


def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(load_all_yaml(path))
    return docs


def pod_spec(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    if manifest["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
        spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
        return spec
    return None


def pod_containers(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(manifest)
    return [] if spec is None else list(spec["containers"])


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d["kind"] == kind]


def test_kustomization_lists_every_manifest() -> None:
    listed = set(load_yaml(K8S / "kustomization.yaml")["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files


def test_deployments_probe_ready_and_alive_and_run_locked_down() -> None:
    deployments = of_kind("Deployment")
    assert deployments
    for deployment in deployments:
        spec = pod_spec(deployment)
        assert spec is not None
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        for container in spec["containers"]:
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            ready, alive = container["readinessProbe"], container["livenessProbe"]
            assert ready["httpGet"]["path"] == "/readyz"
            assert alive["httpGet"]["path"] == "/healthz"
            assert ready["httpGet"]["port"] in ports
            assert alive["httpGet"]["port"] in ports
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]["memory"]


def test_every_workload_container_is_non_root_with_a_read_only_root() -> None:
    for manifest in k8s_documents():
        spec = pod_spec(manifest)
        if spec is None:
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True, manifest["metadata"]["name"]
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts  # Python and libraries may need a writable /tmp


def test_each_replica_takes_its_instance_id_from_the_pod_name() -> None:
    [deployment] = of_kind("Deployment")
    [container] = pod_containers(deployment)
    [instance] = [e for e in container["env"] if e["name"] == "MODERATION_INSTANCE_ID"]
    assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert deployment["spec"]["replicas"] >= 2


def test_config_map_settings_are_valid_for_the_service() -> None:
    config = next(d for d in of_kind("ConfigMap") if d["metadata"]["name"] == "moderation-config")
    database = next(d for d in of_kind("Secret") if d["metadata"]["name"] == "moderation-database")
    env = {**config["data"], **database["stringData"], "MODERATION_INSTANCE_ID": "moderation-0"}
    settings = assert_valid_settings(env, "k8s")
    assert settings.http_host == "0.0.0.0"  # noqa: S104 - inside a pod
    assert settings.http_port == 8080


def test_every_referenced_config_map_secret_and_volume_exists() -> None:
    config_maps = {d["metadata"]["name"] for d in of_kind("ConfigMap")}
    secrets = {d["metadata"]["name"] for d in of_kind("Secret")}
    config = next(d for d in of_kind("ConfigMap") if d["metadata"]["name"] == "moderation-config")
    for manifest in k8s_documents():
        spec = pod_spec(manifest)
        if spec is None:
            continue
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for volume in volumes.values():
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert set(mounts.values()) <= set(volumes)
    # The files the settings name are where the ConfigMap and Secret are mounted.
    [deployment] = of_kind("Deployment")
    [container] = pod_containers(deployment)
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    for key in ("MODERATION_POLICY_FILE", "MODERATION_TOKENS_FILE"):
        assert str(Path(config["data"][key]).parent) in mounted, key
    assert str(Path(config["data"]["MODERATION_MODEL_PATH"]).parent) in mounted


def test_service_and_disruption_budget_select_the_deployment_pods() -> None:
    [deployment] = of_kind("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    [container] = pod_containers(deployment)
    port_names = {p["name"] for p in container["ports"]}
    for kind in ("Service", "PodDisruptionBudget"):
        [manifest] = of_kind(kind)
        selector = manifest["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), kind
    [service] = of_kind("Service")
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    [budget] = of_kind("PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
