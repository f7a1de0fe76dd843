"""The Kubernetes manifests in deploy/kubernetes agree with the daemon's contract:
probes on the ConfigMap's health_listen port, the Service on a listener's port,
every file the configuration names under a mounted volume (the Secret's files
among the Secret's keys), the Secret mounted 0400 and readable by the pod's
user, a grace period longer than drain + shutdown; a StatefulSet whose
serviceName is the headless Service, and an init script (run here with sh, as
each pod of the StatefulSet) that writes a configuration ``dtls-proxyd
--check-config`` accepts once the Secret's files are in place, with node_id =
ordinal + 1 and the other ordinals' headless DNS names as peers on the cluster
port."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

from harness import REPO, make_certificate, run_daemon_once, toml_tables, write_secret

MANIFESTS = REPO / "deploy" / "kubernetes"
DOCKERFILE = REPO / "deploy" / "container" / "Dockerfile"
FILE_KEYS = ("certificate", "private_key", "client_ca", "server_ca", "psk_file", "ticket_key_file",
             "cookie_secret_file", "secret_file")
# Keys of the other half of the scale-out work ([daemon] health_listen and drain_timeout):
# a binary built without it reports them as unknown keys.
PENDING_KEYS = ("health_listen", "drain_timeout")


@pytest.fixture(scope="module")
def objects() -> dict[str, list[dict]]:
    """Every object of every manifest, by kind."""
    by_kind: dict[str, list[dict]] = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and "kind" in document:
                by_kind.setdefault(document["kind"], []).append(document)
    return by_kind


def _one(objects, kind: str) -> dict:
    assert len(objects.get(kind, [])) == 1, f"expected one {kind}, found {len(objects.get(kind, []))}"
    return objects[kind][0]


def _workload(objects) -> dict:
    return _one(objects, "StatefulSet")


def _container(objects) -> dict:
    containers = _workload(objects)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _init_container(objects) -> dict:
    containers = _workload(objects)["spec"]["template"]["spec"]["initContainers"]
    assert len(containers) == 1
    return containers[0]


def _init_env(objects) -> dict[str, str]:
    """The init container's literal environment (valueFrom entries left out)."""
    return {e["name"]: e["value"] for e in _init_container(objects)["env"] if "value" in e}


def _config_text(objects) -> str:
    return _one(objects, "ConfigMap")["data"]["dtls-proxy.toml"]


def _config(objects) -> dict:
    return tomllib.loads(_config_text(objects))


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration):
        total += float(number) * units[unit]
    assert total > 0 or duration.strip("0") == "", duration
    return total


def _port(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def _container_port(container: dict, port) -> dict:
    """The container port a probe or Service names, by name or number."""
    for entry in container["ports"]:
        if port in (entry.get("name"), entry["containerPort"]):
            return entry
    raise AssertionError(f"no container port {port!r} in {container['ports']}")


def _named_files(config: dict) -> list[str]:
    return [table[key] for table in toml_tables(config) for key in FILE_KEYS if table.get(key)]


def _mounts(objects, container: dict | None = None) -> dict[str, dict]:
    """Mount path -> the volume mounted there (in the daemon's container unless told)."""
    spec = _workload(objects)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    container = container or _container(objects)
    return {m["mountPath"]: volumes[m["name"]] | {"readOnly": m.get("readOnly", False)}
            for m in container["volumeMounts"]}


def _volume_of(objects, path: str) -> tuple[str, dict]:
    for mount, volume in _mounts(objects).items():
        if PurePosixPath(path).is_relative_to(mount):
            return mount, volume
    raise AssertionError(f"{path} lies under no mounted volume ({sorted(_mounts(objects))})")


def test_probes_use_the_health_listener(objects):
    daemon = _config(objects)["daemon"]
    container = _container(objects)
    health = _port(daemon["health_listen"])
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, probe
        port = _container_port(container, get["port"])
        assert port["containerPort"] == health and port.get("protocol", "TCP") == "TCP", probe


def test_the_udp_service_reaches_a_listener_and_keeps_client_addresses(objects):
    listens = {_port(listener["listen"]) for listener in _config(objects)["listener"]}
    container = _container(objects)
    services = objects["Service"]
    public = [s for s in services if s["spec"].get("clusterIP") != "None"]
    headless = [s for s in services if s["spec"].get("clusterIP") == "None"]
    assert len(public) == 1 and len(headless) == 1
    labels = _workload(objects)["spec"]["template"]["metadata"]["labels"]
    for service in services:
        assert service["spec"]["selector"].items() <= labels.items(), service["metadata"]["name"]
    spec = public[0]["spec"]
    assert spec["externalTrafficPolicy"] == "Local"
    udp = [p for p in spec["ports"] if p["protocol"] == "UDP"]
    assert udp
    for port in udp:
        target = _container_port(container, port.get("targetPort", port["port"]))
        assert target["protocol"] == "UDP" and target["containerPort"] in listens, port
    pdb = _one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_every_named_file_is_under_a_mounted_volume(objects):
    container = _container(objects)
    config_path = container["args"][container["args"].index("--config") + 1]
    mount, volume = _volume_of(objects, config_path)
    # The daemon reads what the init container wrote into the node volume.
    assert "emptyDir" in volume and volume["readOnly"] is True, volume
    init = _init_container(objects)
    init_mounts = _mounts(objects, init)
    assert init_mounts[mount]["name"] == volume["name"] and init_mounts[mount]["readOnly"] is False
    assert _init_env(objects)["OUT_DIR"] == mount
    assert PurePosixPath(config_path).name == "dtls-proxy.toml"
    peers_file = _config(objects)["cluster"]["peers_file"]
    assert _volume_of(objects, peers_file) == (mount, volume), peers_file
    # The init script and the template it copies are keys of the ConfigMap, mounted in the init container.
    configmap = _one(objects, "ConfigMap")
    script = init["command"][-1]
    template = re.search(r"template=\$\{TEMPLATE:-([^}]+)\}", configmap["data"]["cluster-init.sh"]).group(1)
    for path in (script, template):
        config_mount = next(m for m in init_mounts if PurePosixPath(path).is_relative_to(m))
        assert init_mounts[config_mount]["configMap"]["name"] == configmap["metadata"]["name"], path
        assert PurePosixPath(path).relative_to(config_mount).as_posix() in configmap["data"], path

    secret = _one(objects, "Secret")
    files = _named_files(_config(objects))
    assert files
    for path in files:
        mount, volume = _volume_of(objects, path)
        assert volume["secret"]["secretName"] == secret["metadata"]["name"], path
        key = PurePosixPath(path).relative_to(mount).as_posix()
        assert key in secret.get("stringData", {}) | secret.get("data", {}), f"{path}: no key {key} in the Secret"


def test_the_statefulset_names_its_pods_through_the_headless_service(objects):
    workload = _workload(objects)
    headless = [s for s in objects["Service"] if s["spec"].get("clusterIP") == "None"]
    public = [s for s in objects["Service"] if s["spec"].get("clusterIP") != "None"]
    assert workload["spec"]["serviceName"] == headless[0]["metadata"]["name"]
    # Pods start together and resolve each other before they are ready.
    assert workload["spec"]["podManagementPolicy"] == "Parallel"
    assert headless[0]["spec"]["publishNotReadyAddresses"] is True
    env = _init_env(objects)
    assert env["HEADLESS_SERVICE"] == workload["spec"]["serviceName"]
    assert int(env["REPLICAS"]) == workload["spec"]["replicas"]
    namespace = next(e for e in _init_container(objects)["env"] if e["name"] == "NAMESPACE")
    assert namespace["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    # The cluster port: a UDP container port, on the headless Service, not on the public one.
    cluster_port = _port(_config(objects)["cluster"]["listen"])
    assert int(env["CLUSTER_PORT"]) == cluster_port
    container = _container(objects)
    assert any(p["containerPort"] == cluster_port and p["protocol"] == "UDP" for p in container["ports"])
    targets = [_container_port(container, p.get("targetPort", p["port"]))["containerPort"]
               for p in headless[0]["spec"]["ports"] if p["protocol"] == "UDP" and p["port"] == cluster_port]
    assert targets == [cluster_port]
    for port in public[0]["spec"]["ports"]:
        assert _container_port(container, port.get("targetPort", port["port"]))["containerPort"] != cluster_port
    # The init container runs under the same restrictions as the daemon.
    assert _init_container(objects)["securityContext"] == container["securityContext"]


def test_the_secret_is_0400_and_the_pod_can_read_it(objects):
    spec = _workload(objects)["spec"]["template"]["spec"]
    secret_volumes = [v for v in spec["volumes"] if "secret" in v]
    assert secret_volumes
    for volume in secret_volumes:
        assert volume["secret"]["defaultMode"] == 0o400, volume
    context = spec["securityContext"]
    assert context["runAsNonRoot"] is True
    # The Dockerfile's user is the pod's user.
    user = re.search(r"^USER (\d+)(?::(\d+))?$", DOCKERFILE.read_text(), re.M)
    assert user and int(user.group(1)) == context["runAsUser"]
    # The kubelet writes Secret files as root; a non-root user reads them through
    # fsGroup, which adds group read (0400 becomes 0440). The daemon refuses a key
    # its group may read unless allow_world_readable_keys says otherwise.
    assert context.get("fsGroup") is not None, "without fsGroup a non-root user cannot read root's 0400 files"
    for listener in _config(objects)["listener"]:
        if listener.get("private_key") or listener.get("ticket_key_file") or listener.get("psk_file"):
            assert listener.get("allow_world_readable_keys") is True, listener["name"]


def test_the_grace_period_exceeds_drain_and_shutdown(objects):
    daemon = _config(objects)["daemon"]
    assert daemon.get("reload_on_change") is True
    drain = _seconds(daemon.get("drain_timeout", "0s"))
    shutdown = _seconds(daemon.get("shutdown_timeout", "5s"))
    grace = _workload(objects)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > drain + shutdown, (grace, drain, shutdown)


def _fake_getent(directory: Path, status: int) -> dict[str, str]:
    """An environment whose getent answers every name with `status` (the test has no cluster DNS)."""
    directory.mkdir()
    getent = directory / "getent"
    getent.write_text(f"#!/bin/sh\nexit {status}\n")
    getent.chmod(0o755)
    return {"PATH": f"{directory}:{os.environ['PATH']}"}


def _run_init(objects, tmp_path: Path, hostname: str, node_dir: Path, template: Path, extra: dict[str, str]):
    script = tmp_path / "cluster-init.sh"
    script.write_text(_one(objects, "ConfigMap")["data"]["cluster-init.sh"])
    env = _init_env(objects) | {"HOSTNAME": hostname, "NAMESPACE": "prod", "OUT_DIR": str(node_dir),
                                "TEMPLATE": str(template)} | extra
    return subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=20, env=env,
                          stdin=subprocess.DEVNULL)


def test_check_config_accepts_each_pods_configuration_with_the_secret_in_place(objects, tmp_path):
    mounts = _mounts(objects)
    secret_mount = next(m for m, v in mounts.items() if "secret" in v)
    node_mount = next(m for m, v in mounts.items() if "emptyDir" in v)
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    # What the kubelet makes of defaultMode 0400 with fsGroup: 0440.
    mode = _workload(objects)["spec"]["template"]["spec"]["volumes"]
    mode = next(v["secret"]["defaultMode"] for v in mode if "secret" in v) | 0o040
    cert, key = make_certificate(tmp_path, "server")
    contents = {"tls.crt": cert.read_bytes(), "tls.key": key.read_bytes(),
                "cookie.secret": os.urandom(32), "ticket.key": os.urandom(48), "cluster.secret": os.urandom(32)}
    for name in _one(objects, "Secret")["stringData"]:
        write_secret(secret_dir / name, contents[name])
        os.chmod(secret_dir / name, mode)

    workload = _workload(objects)
    name, replicas = workload["metadata"]["name"], workload["spec"]["replicas"]
    cluster_port = _port(_config(objects)["cluster"]["listen"])
    resolves = _fake_getent(tmp_path / "bin", 0)
    stripped = []
    for ordinal in range(replicas):
        node_dir = tmp_path / f"node-{ordinal}"
        node_dir.mkdir()
        template = tmp_path / f"template-{ordinal}.toml"
        text = _config_text(objects).replace(secret_mount, str(secret_dir)).replace(node_mount, str(node_dir))
        for key in stripped:
            text = re.sub(rf"(?m)^{key}\s*=.*\n", "", text)
        template.write_text(text)
        init = _run_init(objects, tmp_path, f"{name}-{ordinal}", node_dir, template, resolves)
        assert init.returncode == 0, init.stdout + init.stderr

        path = node_dir / "dtls-proxy.toml"
        config = tomllib.loads(path.read_text())
        assert config["daemon"]["node_id"] == ordinal + 1
        expected = {(k + 1, f"{name}-{k}.{workload['spec']['serviceName']}.prod.svc.cluster.local:{cluster_port}")
                    for k in range(replicas) if k != ordinal}
        peers = {(int(node), address) for node, address in
                 (line.split() for line in (node_dir / "peers").read_text().splitlines() if line.strip())}
        assert peers == expected
        # Only node_id differs from the ConfigMap's template.
        assert config | {"daemon": config["daemon"] | {"node_id": 0}} == tomllib.loads(text)

        for _ in range(len(PENDING_KEYS) + 1):
            result = run_daemon_once(path, "--check-config")
            unknown = re.search(r"daemon\.(\w+): unknown key", result.stderr + result.stdout)
            # Until [daemon] health_listen and drain_timeout are merged, this binary
            # reports them as unknown: strip exactly those two (and only when it
            # says so), so the rest of the configuration is still checked, and the
            # test keeps checking them once the binary knows them.
            if result.returncode != 0 and unknown and unknown.group(1) in PENDING_KEYS:
                stripped.append(unknown.group(1))
                path.write_text(re.sub(rf"(?m)^{unknown.group(1)}\s*=.*\n", "", path.read_text()))
                continue
            break
        assert result.returncode == 0, result.stdout + result.stderr
        assert "configuration OK: " in result.stdout, result.stdout + result.stderr
    assert len(stripped) == len(set(stripped))
    print(f"--check-config accepted the configuration of all {replicas} pods; "
          f"stripped as unknown: {stripped or 'nothing'}")


def test_the_init_script_fails_while_a_peer_does_not_resolve(objects, tmp_path):
    node_dir = tmp_path / "node"
    node_dir.mkdir()
    template = tmp_path / "template.toml"
    template.write_text(_config_text(objects))
    name = _workload(objects)["metadata"]["name"]
    result = _run_init(objects, tmp_path, f"{name}-0", node_dir, template,
                       _fake_getent(tmp_path / "bin", 2) | {"PEER_WAIT_SECONDS": "1"})
    assert result.returncode != 0
    assert "does not resolve after 1s" in result.stderr, result.stderr
    # The daemon's configuration is written only once every peer resolves.
    assert not (node_dir / "dtls-proxy.toml").exists()
    result = _run_init(objects, tmp_path, name, node_dir, template, _fake_getent(tmp_path / "bin2", 0))
    assert result.returncode != 0 and "does not end in -ORDINAL" in result.stderr, result.stderr
