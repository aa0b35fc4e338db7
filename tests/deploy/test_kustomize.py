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


def one(manifests: list[Manifest], kind: str, name: str = "calcifer") -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} {name}"
    return found[0]


def pod_specs(manifests: list[Manifest]) -> list[Manifest]:
    kinds = ("Deployment", "StatefulSet", "Job")
    return [m["spec"]["template"]["spec"] for m in manifests if m["kind"] in kinds]


def calcifer_containers(manifests: list[Manifest]) -> list[Manifest]:
    containers = [
        c for spec in pod_specs(manifests) for c in spec.get("initContainers", []) + spec["containers"]
    ]
    return [c for c in containers if c["image"].rsplit("/", 1)[-1].startswith("calcifer:")]


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def with_components(tmp: Path, overlay: str, *components: str) -> Path:
    """A copy of the tree with an overlay of `overlay` plus `components` (Kustomize loads only files
    under the kustomization's root, so the overlay cannot live outside the tree)."""
    tree = tmp / "kustomize"
    if not tree.exists():
        shutil.copytree(KUSTOMIZE, tree)
    directory = tree / "overlays" / f"{overlay}-with-{'-'.join(components)}"
    directory.mkdir()
    listed = ", ".join(f"../../components/{c}" for c in components)
    (directory / "kustomization.yaml").write_text(f"resources: [../{overlay}]\ncomponents: [{listed}]\n")
    return directory


@pytest.fixture(
    scope="module",
    params=[*OVERLAYS, "small+datastores"],
    ids=[*(p.name for p in OVERLAYS), "small+datastores"],
)
def manifests(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[Manifest]:
    if isinstance(request.param, Path):
        return render(request.param)
    return render(with_components(tmp_path_factory.mktemp("overlay"), "small", "datastores"))


def test_there_are_a_small_and_a_production_overlay() -> None:
    assert {p.name for p in OVERLAYS} >= {"small", "production"}


def test_env_names_are_calcifer_settings_and_secrets_are_references(manifests: list[Manifest]) -> None:
    known = known_env_names()
    assert calcifer_containers(manifests)
    for container in calcifer_containers(manifests):
        assert set(env_of(container)) <= known, set(env_of(container)) - known
    for spec in pod_specs(manifests):
        for container in spec.get("initContainers", []) + spec["containers"]:
            for name, variable in env_of(container).items():
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
    job = one(manifests, "Job", "calcifer-migrate")["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["migrate"]
    assert (
        env_of(job["containers"][0])["CALCIFER_DATABASE_URL"]
        == env_of(spec["containers"][0])["CALCIFER_DATABASE_URL"]
    )


def test_pods_are_unprivileged_read_only_and_tokenless(manifests: list[Manifest]) -> None:
    for spec in pod_specs(manifests):
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        for container in spec.get("initContainers", []) + spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == [
                "ALL"
            ]
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    for container in calcifer_containers(manifests):  # /tmp: Calcifer's one writable place (tokenizer cache)
        assert "/tmp" in {mount["mountPath"] for mount in container["volumeMounts"]}, container["name"]
    account = one(manifests, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False


def test_the_in_cluster_datastores_match_the_urls_the_readme_gives(tmp_path: Path) -> None:
    manifests = render(with_components(tmp_path, "small", "datastores"))
    postgres, redis = (
        one(manifests, "Service", "calcifer-postgres"),
        one(manifests, "Service", "calcifer-redis"),
    )
    assert [p["port"] for p in postgres["spec"]["ports"]] == [5432]
    assert [p["port"] for p in redis["spec"]["ports"]] == [6379]
    readme = (ROOT / "README.md").read_text()
    assert "postgresql://calcifer:PW@calcifer-postgres:5432/calcifer" in readme
    assert "redis://calcifer-redis:6379/0" in readme
    gateway = one(manifests, "Service")
    for store in (postgres, redis):  # the gateway's Service never selects a datastore's pods
        assert not gateway["spec"]["selector"].items() <= store["spec"]["selector"].items()


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
    manifests = render(with_components(tmp_path, "production", "servicemonitor"))
    monitor, service = one(manifests, "ServiceMonitor"), one(manifests, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
