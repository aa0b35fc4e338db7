"""Every Kustomize overlay, rendered by `kubectl kustomize` and checked against Calcifer itself: the env
names are settings Calcifer reads, the probes hit its health paths on its port, the config file parses
with Calcifer's own reader, secrets are referenced and never inlined, pods never migrate and wait for
the migrate Job, and the pods run unprivileged on a read-only root file system without an API token."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from calcifer.config.file import parse_file_config
from calcifer.config.settings import duration
from tests.deploy.checks import HEALTH_PATHS, PORT, ROOT, known_env_names, looks_secret

KUSTOMIZE = ROOT / "deploy" / "kustomize"
OVERLAYS = sorted(p.parent for p in (KUSTOMIZE / "overlays").glob("*/kustomization.yaml"))
Manifest = dict[str, Any]


def render(directory: Path) -> list[Manifest]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the Kustomize overlays were not rendered")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def one(manifests: list[Manifest], kind: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def pod_specs(manifests: list[Manifest]) -> list[Manifest]:
    return [m["spec"]["template"]["spec"] for m in manifests if m["kind"] in ("Deployment", "Job")]


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {variable["name"]: variable for variable in container.get("env", [])}


@pytest.fixture(scope="module", params=OVERLAYS, ids=[p.name for p in OVERLAYS])
def manifests(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(request.param)


def test_there_are_a_small_and_a_production_overlay() -> None:
    assert {p.name for p in OVERLAYS} >= {"small", "production"}


def test_env_names_are_calcifer_settings_and_secrets_are_references(manifests: list[Manifest]) -> None:
    known = known_env_names()
    for spec in pod_specs(manifests):
        for container in spec.get("initContainers", []) + spec["containers"]:
            for name, variable in env_of(container).items():
                assert name in known, f"{name} is not a setting Calcifer reads"
                if looks_secret(name):
                    assert "value" not in variable, f"{name} is written down"
                    assert set(variable["valueFrom"]) == {"secretKeyRef"}, name
    for secret in (m for m in manifests if m["kind"] == "Secret"):
        assert not secret.get("data") and not secret.get("stringData"), "a Secret with a value is inlined"


def test_probes_are_calcifers_health_paths_on_its_port(manifests: list[Manifest]) -> None:
    deployment = one(manifests, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    server_port = int(env_of(container).get("SERVER_PORT", {}).get("value", PORT))
    assert ports["http"] == server_port
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if probe in container:
            check = container[probe]["httpGet"]
            assert check["path"] in HEALTH_PATHS and ports.get(check["port"], check["port"]) == server_port
    service = one(manifests, "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert one(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_termination_drains_within_the_grace_period(manifests: list[Manifest]) -> None:
    spec = one(manifests, "Deployment")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    pause = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    env = {name: variable["value"] for name, variable in env_of(container).items() if "value" in variable}
    grace = duration(env, "CALCIFER_SHUTDOWN_GRACE", "30s")
    delay = duration(env, "CALCIFER_SHUTDOWN_DELAY", "0s", allow_zero=True)
    assert float(pause[1]) + delay + grace < spec["terminationGracePeriodSeconds"]


def test_pods_never_migrate_and_wait_for_the_migrate_job(manifests: list[Manifest]) -> None:
    spec = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert env_of(spec["containers"][0])["CALCIFER_MIGRATE"]["value"] == "off"
    assert spec["containers"][0]["args"] == ["serve"]
    waits = " ".join(spec["initContainers"][0]["command"])
    assert "calcifer migrate --check" in waits
    job = one(manifests, "Job")["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["migrate"]
    assert (
        env_of(job["containers"][0])["CALCIFER_DATABASE_URL"]
        == env_of(spec["containers"][0])["CALCIFER_DATABASE_URL"]
    )


def test_pods_are_unprivileged_read_only_and_tokenless(manifests: list[Manifest]) -> None:
    for spec in pod_specs(manifests):
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        mounts = set()
        for container in spec.get("initContainers", []) + spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == [
                "ALL"
            ]
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
            mounts |= {mount["mountPath"] for mount in container.get("volumeMounts", [])}
        assert "/tmp" in mounts  # the one writable place (the tokenizer cache)
    account = one(manifests, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def test_the_config_map_is_a_valid_calcifer_config(manifests: list[Manifest]) -> None:
    container = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    config_path = Path(env_of(container)["CALCIFER_CONFIG"]["value"])
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == config_path.parent)
    volumes = one(manifests, "Deployment")["spec"]["template"]["spec"]["volumes"]
    config_map_name = next(v["configMap"]["name"] for v in volumes if v["name"] == mount["name"])
    config_map = next(
        m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"] == config_map_name
    )
    parse_file_config(config_map["data"][config_path.name], config_path.name)  # raises on an unknown key


def test_production_autoscales_the_deployment_it_does_not_pin() -> None:
    manifests = render(KUSTOMIZE / "overlays" / "production")
    deployment = one(manifests, "Deployment")
    hpa = one(manifests, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    assert "replicas" not in deployment["spec"]


def test_the_optional_service_monitor_scrapes_the_service(tmp_path: Path) -> None:
    tree = tmp_path / "kustomize"
    shutil.copytree(KUSTOMIZE, tree)
    overlay = tree / "overlays" / "monitored"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "resources: [../production]\ncomponents: [../../components/servicemonitor]\n"
    )
    manifests = render(overlay)
    monitor, service = one(manifests, "ServiceMonitor"), one(manifests, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
