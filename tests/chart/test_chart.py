#!/usr/bin/env python3
"""Tests of charts/logferry, the Dockerfile and the monitoring/Airflow examples.

Run through tests/chart/run.sh (which puts helm, kubernetes-validate, hadolint and promtool on
PATH from target/tools/env.sh). Every check runs; each prints `ok` or `FAIL` with the reason, and
the last line is "N passed, N failed". Exit status 1 when anything failed.

Real tools only: Helm 4 renders, kubernetes-validate checks the output against the Kubernetes
OpenAPI schemas (oldest supported and newest bundled version), the real `logferry validate`
checks every rendered logferry.yaml, promtool evaluates the alert rules, hadolint lints the
Dockerfile.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "logferry"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
# Example values files users copy (ECK, Elastic Cloud): rendered and validated like ci/ files.
EXAMPLE_VALUES = [ROOT / "examples" / "eck-values.yaml", ROOT / "examples" / "elastic-cloud-values.yaml"]
INVALID_VALUES = sorted((ROOT / "tests" / "chart" / "invalid-values").glob("*.yaml"))
METRICS_FILE = ROOT / "tests" / "chart" / "exported-metrics.txt"
ALERTS = ROOT / "examples" / "monitoring" / "prometheus" / "logferry-alerts.yaml"
ALERT_TESTS = ROOT / "examples" / "monitoring" / "prometheus" / "logferry-alerts.test.yaml"
DASHBOARD = ROOT / "examples" / "monitoring" / "grafana" / "logferry-dashboard.json"
AIRFLOW = ROOT / "examples" / "airflow"
SIDECAR_PARENT = ROOT / "tests" / "chart" / "sidecar-parent"
RELEASE, NAMESPACE = "lf", "logging"
# Oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema bundled.
KUBE_VERSIONS = ["1.25.0", "1.37.0"]
CONTAINER_CONFIG = "/etc/logferry/logferry.yaml"

# The chart's default DaemonSet rollout: the new pod beside the old one, handing over data_dir.
SURGE = {"maxSurge": 1, "maxUnavailable": 0}

RESULTS: list[tuple[str, str | None]] = []


class CheckFailed(AssertionError):
    pass


def check(cond: bool, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def run_check(name: str, fn, *args) -> None:
    try:
        fn(*args)
    except CheckFailed as e:
        RESULTS.append((name, str(e)))
        print(f"FAIL - {name}: {e}", flush=True)
        return
    except Exception:  # a broken check is a failed check, with its trace
        RESULTS.append((name, traceback.format_exc()))
        print(f"FAIL - {name}:\n{traceback.format_exc()}", flush=True)
        return
    RESULTS.append((name, None))
    print(f"ok   - {name}", flush=True)


def sh(*cmd: str, ok: bool = True, env: dict | None = None, cwd: Path | None = None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd or ROOT)
    if ok and p.returncode != 0:
        raise CheckFailed(f"`{' '.join(cmd)}` exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p


def helm_template(*args: str, chart: Path = CHART) -> list[dict]:
    out = sh("helm", "template", RELEASE, str(chart), "--namespace", NAMESPACE, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


RENDER_CACHE: dict[Path, list[dict]] = {}


def render(values: Path) -> list[dict]:
    if values not in RENDER_CACHE:
        RENDER_CACHE[values] = helm_template("-f", str(values))
    return RENDER_CACHE[values]


def kinds(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o.get("kind") == kind]


def one(objs: list[dict], kind: str) -> dict:
    found = kinds(objs, kind)
    check(len(found) == 1, f"expected exactly one {kind}, got {len(found)}")
    return found[0]


def values_of(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def duration_seconds(s: str) -> float:
    total = 0.0
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", s)
    check(parts and "".join(n + u for n, u in parts) == s, f"unparsable duration {s!r}")
    for n, u in parts:
        total += float(n) * units[u]
    return total


def logferry_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    return target / "debug" / "logferry"


# ---------------------------------------------------------------------------------------------
# Per value set: lint, render, schema-validate
# ---------------------------------------------------------------------------------------------


def t_lint(values: Path) -> None:
    sh("helm", "lint", "--strict", str(CHART), "-f", str(values), "--namespace", NAMESPACE)


def t_kubernetes_validate(values: Path) -> None:
    objs = render(values)
    if not objs:
        return  # nothing rendered (asserted by the value set's own check)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump_all(objs, f)
    try:
        for v in KUBE_VERSIONS:
            p = sh("kubernetes-validate", "--strict", "--quiet", "-k", v, f.name, ok=False)
            check(p.returncode == 0, f"kubernetes-validate {v}:\n{p.stdout}{p.stderr}")
    finally:
        os.unlink(f.name)


def rendered_configs(objs: list[dict]) -> list[tuple[str, str]]:
    return [
        (cm["metadata"]["name"], cm["data"]["logferry.yaml"])
        for cm in kinds(objs, "ConfigMap")
        if "logferry.yaml" in cm.get("data", {})
    ]


def pod_env(objs: list[dict]) -> dict[str, str]:
    """The environment the rendered container would see (valueFrom vars get a stand-in value)."""
    env = {"PATH": os.environ.get("PATH", "")}
    for ds in kinds(objs, "DaemonSet"):
        for c in ds["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env", []):
                env[e["name"]] = e.get("value", f"test-{e['name'].lower()}")
    env.setdefault("NODE_NAME", "node-1")
    env.setdefault("LOGFERRY_ES_USERNAME", "logferry-writer")
    return env


def t_logferry_validate(values: Path) -> None:
    binary = logferry_binary()
    check(
        binary.is_file(),
        f"{binary} does not exist: build it first with `cargo build --workspace --bins` "
        "(.ci/run does this before the chart tests)",
    )
    objs = render(values)
    configs = rendered_configs(objs)
    check(configs, "no ConfigMap with logferry.yaml rendered")
    with tempfile.TemporaryDirectory() as d:
        for name, text in configs:
            path = Path(d) / f"{name}.yaml"
            path.write_text(text)
            p = sh(str(binary), "validate", "--config", str(path), ok=False, env=pod_env(objs))
            check(
                p.returncode == 0,
                f"logferry validate rejected ConfigMap {name} (exit {p.returncode}):\n"
                f"{p.stdout}{p.stderr}\n--- config ---\n{text}",
            )


# ---------------------------------------------------------------------------------------------
# Assertions on the rendered objects
# ---------------------------------------------------------------------------------------------

DS_ONLY_KINDS = {
    "DaemonSet",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Service",
    "ServiceMonitor",
    "PodMonitor",
    "NetworkPolicy",
}


def ds_parts(objs: list[dict]):
    ds = one(objs, "DaemonSet")
    pod = ds["spec"]["template"]
    spec = pod["spec"]
    check(len(spec["containers"]) == 1, "the DaemonSet pod has one container")
    c = spec["containers"][0]
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    return ds, pod, spec, c, vols, mounts


def daemon_config(objs: list[dict]) -> dict:
    ds, _, spec, _, vols, _ = ds_parts(objs)
    cm_name = next(v["configMap"]["name"] for v in vols.values() if "configMap" in v)
    cms = [cm for cm in kinds(objs, "ConfigMap") if cm["metadata"]["name"] == cm_name]
    check(len(cms) == 1, f"the DaemonSet's ConfigMap {cm_name} is rendered")
    return cms[0]


def assert_daemonset(objs: list[dict], values: dict) -> None:
    ds, pod, spec, c, vols, mounts = ds_parts(objs)
    hp = values.get("hostPaths", {})
    varlog = hp.get("varLog", "/var/log")
    data_dir = hp.get("dataDir", "/var/lib/logferry")

    # Container and config wiring.
    check(c["args"] == ["run", "--config", CONTAINER_CONFIG], f"container args: {c['args']}")
    cfg_mount = mounts.get("/etc/logferry")
    check(cfg_mount and cfg_mount.get("readOnly") is True, "config mounted read-only at /etc/logferry")
    check("configMap" in vols[cfg_mount["name"]], "/etc/logferry comes from the ConfigMap")

    # hostPath mounts.
    m = mounts.get(varlog)
    check(m is not None, f"{varlog} is mounted")
    check(m.get("readOnly") is True, f"{varlog} is mounted read-only")
    check(vols[m["name"]].get("hostPath", {}).get("path") == varlog, f"{varlog} is the host's")
    m = mounts.get(data_dir)
    check(m is not None, f"data dir {data_dir} is mounted")
    check(not m.get("readOnly", False), "data dir is mounted read-write")
    check(
        vols[m["name"]].get("hostPath") == {"path": data_dir, "type": "DirectoryOrCreate"},
        f"data dir volume: {vols[m['name']]}",
    )
    docker = hp.get("dockerContainers", {})
    docker_path = docker.get("path", "/var/lib/docker/containers")
    if docker.get("enabled"):
        m = mounts.get(docker_path)
        check(m is not None and m.get("readOnly") is True, f"{docker_path} mounted read-only")
        check(vols[m["name"]]["hostPath"]["path"] == docker_path, "docker dir is the host's")
        # Files under pods_dir may link there (cri-dockerd) only if the daemon knows it.
        src = yaml.safe_load(daemon_config(objs)["data"]["logferry.yaml"])["source"]
        check(src.get("docker_containers_dir", docker_path) == docker_path,
              f"source.docker_containers_dir is the mounted {docker_path}: {src}")
    else:
        check(docker_path not in mounts, f"{docker_path} not mounted unless enabled")
    host_rw = [
        mp
        for mp, mm in mounts.items()
        if "hostPath" in vols[mm["name"]] and not mm.get("readOnly", False)
    ]
    check(host_rw == [data_dir], f"only the data dir is a writable hostPath: {host_rw}")

    # Probes on the admin port.
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    port = values.get("port", 2020)
    check(ports.get("http-metrics") == port, f"container port http-metrics={port}: {ports}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        pr = c.get(probe)
        check(pr is not None, f"{probe} present")
        check(pr["httpGet"]["path"] == path, f"{probe} path {pr['httpGet']['path']} != {path}")
        check(ports.get(pr["httpGet"]["port"], pr["httpGet"]["port"]) == port, f"{probe} port")

    # NODE_NAME from the downward API.
    env = {e["name"]: e for e in c["env"]}
    check(
        env.get("NODE_NAME", {}).get("valueFrom") == {"fieldRef": {"fieldPath": "spec.nodeName"}},
        f"NODE_NAME from fieldRef spec.nodeName: {env.get('NODE_NAME')}",
    )

    # Scheduling, rollout, shutdown.
    check({"operator": "Exists"} in spec.get("tolerations", []), "tolerates every taint")
    us = ds["spec"]["updateStrategy"]
    want = values.get("updateStrategy", {}).get("rollingUpdate", SURGE)
    check(us == {"type": "RollingUpdate", "rollingUpdate": {**SURGE, **want}}, f"updateStrategy: {us}")
    # With the surge, the old and the new pod run side by side on one node: they must share the
    # data dir (the hostPath checked above: one lock, one set of checkpoints) and nothing that
    # two pods of one node cannot both have.
    check(not spec.get("hostNetwork") and not any("hostPort" in p for p in c["ports"]),
          "no hostNetwork or hostPort (the surge pod would not fit beside the old one)")
    check(spec.get("priorityClassName") == values.get("priorityClassName"), "priorityClassName")
    cfg = yaml.safe_load(daemon_config(objs)["data"]["logferry.yaml"])
    drain = duration_seconds(cfg["shutdown"]["drain_timeout"])
    grace = spec["terminationGracePeriodSeconds"]
    check(grace > drain, f"terminationGracePeriodSeconds {grace} > drain_timeout {drain}s")

    # Resources: requests, memory limit, no CPU limit.
    res = c["resources"]
    check({"cpu", "memory"} <= set(res.get("requests", {})), f"requests: {res}")
    check("memory" in res.get("limits", {}) and "cpu" not in res.get("limits", {}), f"limits: {res}")

    # Security.
    sc = c["securityContext"]
    check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], "drops ALL capabilities")
    check(not sc.get("capabilities", {}).get("add"), "adds no capability by default")
    check(not sc.get("privileged"), "not privileged")
    seccomp = sc.get("seccompProfile") or spec.get("securityContext", {}).get("seccompProfile")
    check(seccomp == {"type": "RuntimeDefault"}, f"seccompProfile RuntimeDefault: {seccomp}")

    # Annotations: config checksum and Prometheus scraping.
    ann = pod["metadata"].get("annotations", {})
    text = daemon_config(objs)["data"]["logferry.yaml"]
    check(
        ann.get("checksum/config") == hashlib.sha256(text.rstrip("\n").encode()).hexdigest(),
        "checksum/config is the sha256 of the rendered logferry.yaml",
    )
    monitored = values.get("serviceMonitor", {}).get("enabled") or values.get("podMonitor", {}).get("enabled")
    if values.get("prometheus", {}).get("scrapeAnnotations", True) and not monitored:
        check(ann.get("prometheus.io/scrape") == "true", "prometheus.io/scrape")
        check(ann.get("prometheus.io/port") == str(port), "prometheus.io/port")
        check(ann.get("prometheus.io/path") == "/metrics", "prometheus.io/path")
    else:
        check(not any(k.startswith("prometheus.io/") for k in ann),
              "no scrape annotations (off, or a ServiceMonitor/PodMonitor scrapes)")

    # The config agrees with the pod.
    check(cfg["node_name"] == "${NODE_NAME}", f"node_name: {cfg['node_name']}")
    check(cfg["data_dir"] == data_dir, f"data_dir {cfg['data_dir']} is the mounted {data_dir}")
    check(cfg["server"]["listen"].endswith(f":{port}"), f"listen {cfg['server']['listen']}")
    check(cfg["source"]["mode"] == "kubernetes", "daemon reads kubernetes logs")
    check(cfg["source"]["pods_dir"].startswith(varlog), "pods_dir under the /var/log mount")

    # RBAC: exactly get/list/watch on pods and namespaces, bound to the pod's ServiceAccount.
    role = one(objs, "ClusterRole")
    rules = [
        (tuple(r.get("apiGroups", [])), tuple(sorted(r["resources"])), tuple(sorted(r["verbs"])))
        for r in role["rules"]
    ]
    check(
        rules == [(("",), ("namespaces", "pods"), ("get", "list", "watch"))],
        f"ClusterRole rules are exactly get/list/watch on pods, namespaces: {role['rules']}",
    )
    crb = one(objs, "ClusterRoleBinding")
    check(crb["roleRef"]["name"] == role["metadata"]["name"], "binding refers to the role")
    sa = one(objs, "ServiceAccount")
    check(
        crb["subjects"]
        == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}],
        f"binding subject: {crb['subjects']}",
    )
    check(spec["serviceAccountName"] == sa["metadata"]["name"], "pod runs as the ServiceAccount")
    check(not kinds(objs, "Role") and not kinds(objs, "RoleBinding"), "no other RBAC objects")

    # Selector matches the pod template.
    sel = ds["spec"]["selector"]["matchLabels"]
    check(sel.items() <= pod["metadata"]["labels"].items(), "selector matches pod labels")

    assert_secrets_as_files(objs, cfg)


def assert_secrets_as_files(objs: list[dict], cfg: dict) -> None:
    """Every *_file in the config is a key of a Secret mounted in the pod; nothing is inlined."""
    check(not kinds(objs, "Secret"), "the chart renders no Secret (credentials come from existing ones)")
    _, _, spec, c, vols, mounts = ds_parts(objs)
    es = cfg.get("elasticsearch") or {}
    files = {
        f"{section}.{k}": v
        for section in ("auth", "tls")
        for k, v in (es.get(section) or {}).items()
        if k.endswith("_file")
    }
    auth = es.get("auth") or {}
    check(
        set(auth) <= {"username", "password_file", "api_key_file", "bearer_token_file"},
        f"auth carries only file references (and username): {auth}",
    )
    if "username" in auth:
        # From the Secret through the environment, or a literal value (auth.basic.username,
        # e.g. ECK's `elastic`): a user name is not a secret.
        check(auth["username"] == "${LOGFERRY_ES_USERNAME}" or "$" not in auth["username"],
              f"username from env or literal: {auth}")
        env = {e["name"]: e for e in c["env"]}
        if auth["username"] == "${LOGFERRY_ES_USERNAME}":
            check(
                "secretKeyRef" in env["LOGFERRY_ES_USERNAME"].get("valueFrom", {}),
                "LOGFERRY_ES_USERNAME comes from the Secret",
            )
    for e in c["env"]:
        check("value" not in e or not re.search(r"pass|secret|token|key", e["name"], re.I),
              f"no credential inlined in env {e['name']}")
    for key, path in files.items():
        owner = [mp for mp in mounts if path.startswith(mp.rstrip("/") + "/")]
        check(owner, f"{key}={path} is not under any volume mount")
        mp = max(owner, key=len)
        vol = vols[mounts[mp]["name"]]
        rel = path[len(mp.rstrip("/")) + 1 :]
        items = [
            (s["secret"]["name"], i["path"])
            for s in vol.get("projected", {}).get("sources", [])
            if "secret" in s
            for i in s["secret"].get("items", [])
        ] + [(vol["secret"]["secretName"], i["path"]) for i in vol.get("secret", {}).get("items", [])]
        check(any(p == rel for _, p in items), f"{key}={path} is not a mounted Secret key ({items})")
        check(mounts[mp].get("readOnly") is True, f"secret mount {mp} read-only")


def t_default(values: Path) -> None:
    objs = render(values)
    v = values_of(values)
    assert_daemonset(objs, v)
    check(
        {o["kind"] for o in objs}
        == {"DaemonSet", "ConfigMap", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Pod"},
        f"default objects: {sorted(o['kind'] for o in objs)}",
    )
    # The `helm test` hook: the release's binary validates the release's ConfigMap.
    test_pod = one(objs, "Pod")
    check(test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test", "the Pod is a helm test hook")
    tc = test_pod["spec"]["containers"][0]
    ds_c = ds_parts(objs)[3]
    check(tc["image"] == ds_c["image"], "helm test runs the release's image")
    check(tc["args"] == ["validate", "--config", CONTAINER_CONFIG], f"helm test args: {tc['args']}")
    cm_vol = next(v for v in test_pod["spec"]["volumes"] if v["name"] == "config")
    check(cm_vol["configMap"]["name"] == daemon_config(objs)["metadata"]["name"],
          "helm test validates the release's ConfigMap")
    cfg = yaml.safe_load(daemon_config(objs)["data"]["logferry.yaml"])
    check(cfg["elasticsearch"]["endpoints"] == ["http://elasticsearch-master:9200"], "endpoints")
    check("auth" not in cfg["elasticsearch"], "no auth without Secrets")
    c = ds_parts(objs)[3]
    check(c["securityContext"].get("runAsUser") == 0, "runs as root (reads root-owned logs)")


def t_daemonset_disabled(values: Path) -> None:
    objs = render(values)
    left = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in objs)
    check(not [o for o in objs if o["kind"] in DS_ONLY_KINDS], f"DaemonSet-only objects: {left}")
    check(not objs, f"nothing rendered when daemonsetEnabled=false and no sidecar: {left}")


def t_sidecar(values: Path) -> None:
    objs = render(values)
    check(not [o for o in objs if o["kind"] in DS_ONLY_KINDS], "no DaemonSet objects")
    cm = one(objs, "ConfigMap")
    check(cm["metadata"]["name"] == f"{RELEASE}-logferry-sidecar", cm["metadata"]["name"])
    cfg = yaml.safe_load(cm["data"]["logferry.yaml"])
    check(cfg["source"]["mode"] == "files", "sidecar reads files")
    check(cfg["source"]["paths"] == ["/opt/airflow/logs/**/*.log"], f"paths {cfg['source']}")
    check(cfg["kubernetes"]["enabled"] is False, "sidecar needs no API access")
    check(cfg["server"]["listen"] == "127.0.0.1:2020", "admin server only reachable in the pod")
    check(cfg["airflow"]["enabled"] is True, "airflow mode from sidecar.config")
    check(cfg["elasticsearch"]["index"] == "airflow-logs-%Y.%m.%d", "merged index")
    check(cfg["elasticsearch"]["auth"] == {"api_key_file": "/var/run/secrets/logferry/api-key/api_key"},
          f"auth by file: {cfg['elasticsearch']}")
    # Issue 17: the task of the worker pod comes from the AIRFLOW_* variables the container sets
    # from the pod's annotations (downward API), quoted because they expand before YAML parsing.
    keys = ["dag_id", "task_id", "run_id", "try_number", "map_index"]
    check(cfg["airflow"].get("task") == {k: f"${{AIRFLOW_{k.upper()}:-}}" for k in keys},
          f"airflow.task from the environment: {cfg['airflow']}")
    text = cm["data"]["logferry.yaml"]
    check(all(f"{k}: '${{AIRFLOW_{k.upper()}:-}}'" in text for k in keys),
          f"airflow.task values single-quoted (a run id holds ':' and '+'):\n{text}")
    # A task set in sidecar.config wins; without airflow, no airflow section at all.
    own = helm_template("-f", str(values), "--set", "sidecar.config.airflow.task.dag_id=etl",
                        "--set", "sidecar.config.airflow.task.task_id=t",
                        "--set", "sidecar.config.airflow.task.run_id=r",
                        "--set", "sidecar.config.airflow.task.try_number=1")
    own_cfg = yaml.safe_load(one(own, "ConfigMap")["data"]["logferry.yaml"])
    check(own_cfg["airflow"]["task"] == {"dag_id": "etl", "task_id": "t", "run_id": "r", "try_number": 1},
          f"sidecar.config.airflow.task kept as given: {own_cfg['airflow']}")
    off = helm_template("-f", str(values), "--set", "sidecar.config.airflow.enabled=false")
    off_cfg = yaml.safe_load(one(off, "ConfigMap")["data"]["logferry.yaml"])
    check("task" not in off_cfg["airflow"], f"no airflow.task without airflow: {off_cfg['airflow']}")


def t_monitors(values: Path) -> None:
    objs = render(values)
    v = values_of(values)
    assert_daemonset(objs, v)
    _, pod, _, c, _, _ = ds_parts(objs)
    svc = one(objs, "Service")
    check(svc["spec"]["clusterIP"] == "None", "headless metrics Service")
    check(svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items(), "Service selects pods")
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    check(svc_ports["http-metrics"]["targetPort"] in [p["name"] for p in c["ports"]], "targetPort")
    sm = one(objs, "ServiceMonitor")
    check(sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items(),
          "ServiceMonitor selects the Service")
    ep = sm["spec"]["endpoints"][0]
    check(ep["port"] in svc_ports and ep["path"] == "/metrics", f"ServiceMonitor endpoint {ep}")
    check(ep["interval"] == "15s" and ep["scrapeTimeout"] == "10s", "ServiceMonitor interval/timeout")
    check(ep["metricRelabelings"] == v["serviceMonitor"]["metricRelabelings"], "metricRelabelings")
    check(sm["metadata"]["labels"]["release"] == "kube-prometheus-stack", "ServiceMonitor labels")
    check(sm["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE], "ServiceMonitor namespace")
    pm = one(objs, "PodMonitor")
    check(pm["metadata"]["namespace"] == "monitoring", "PodMonitor in its own namespace")
    check(pm["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE], "PodMonitor looks at the release")
    check(pm["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(),
          "PodMonitor selects the pods")
    pep = pm["spec"]["podMetricsEndpoints"][0]
    check(pep["port"] in [p["name"] for p in c["ports"]] and pep["interval"] == "60s", f"{pep}")
    rule = one(objs, "PrometheusRule")
    check(rule["spec"] == yaml.safe_load(ALERTS.read_text()), "PrometheusRule holds the tested alert rules")
    check(rule["metadata"]["labels"]["release"] == "kube-prometheus-stack", "PrometheusRule labels")
    dash = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard"))
    check(dash["metadata"]["labels"].get("grafana_dashboard") == "1", "dashboard ConfigMap sidecar label")
    check(dash["metadata"]["namespace"] == "grafana", "dashboard ConfigMap namespace")
    check(json.loads(dash["data"]["logferry.json"]) == json.loads(DASHBOARD.read_text()),
          "dashboard ConfigMap holds the dashboard")
    # The dashboard's node variable and the alerts' job matcher use what these monitors produce.
    for kind, endpoint in (("ServiceMonitor", ep), ("PodMonitor", pep)):
        targets = {r.get("targetLabel") for r in endpoint.get("relabelings", [])}
        check("node" in targets, f"{kind} relabels the pod's node to `node`: {targets}")
    node_var = next(t for t in json.loads(DASHBOARD.read_text())["templating"]["list"] if t["name"] == "node")
    check(re.search(r",\s*node\)$", node_var["query"]["query"]), f"node variable reads `node`: {node_var}")
    job = svc["metadata"]["labels"][sm["spec"]["jobLabel"]]
    check(job == pod["metadata"]["labels"][pm["spec"]["jobLabel"]], "both monitors name the job alike")
    ups = re.findall(r'up\{job=~"([^"]+)"\}', ALERTS.read_text())
    check(ups and all(re.fullmatch(u, job) for u in ups), f"alerts' up{{job=~...}} {ups} match the job {job!r}")


def t_es_auth_secrets(values: Path) -> None:
    objs = render(values)
    v = values_of(values)
    assert_daemonset(objs, v)
    cm = daemon_config(objs)
    cfg = yaml.safe_load(cm["data"]["logferry.yaml"])
    es = cfg["elasticsearch"]
    base = "/var/run/secrets/logferry"
    check(es["auth"] == {"username": "${LOGFERRY_ES_USERNAME}", "password_file": f"{base}/basic/password"},
          f"basic auth by file: {es['auth']}")
    check(es["tls"] == {"ca_file": f"{base}/tls/ca.crt", "cert_file": f"{base}/tls/tls.crt",
                        "key_file": f"{base}/tls/tls.key"}, f"tls by files: {es['tls']}")
    check(es["endpoints"] == v["elasticsearch"]["endpoints"], "endpoints from values")
    _, _, spec, c, vols, _ = ds_parts(objs)
    env = {e["name"]: e for e in c["env"]}
    check(env["LOGFERRY_ES_USERNAME"]["valueFrom"]["secretKeyRef"] == {"name": "logferry-es-basic", "key": "user"},
          "username key of the basic Secret")
    srcs = {(s["secret"]["name"], i["key"], i["path"])
            for s in vols["elasticsearch-credentials"]["projected"]["sources"] for i in s["secret"]["items"]}
    check(srcs == {("logferry-es-basic", "pass", "basic/password"), ("es-http-ca", "ca.pem", "tls/ca.crt"),
                   ("logferry-client-tls", "tls.crt", "tls/tls.crt"), ("logferry-client-tls", "tls.key", "tls/tls.key")},
          f"projected secret keys: {srcs}")
    check(spec["priorityClassName"] == "system-node-critical", "priorityClassName set")


def t_eck(values: Path) -> None:
    """ECK's generated Secrets as they are: the password under a key named after the user, a
    literal username, and the public CA Secret's ca.crt."""
    objs = render(values)
    v = values_of(values)
    assert_daemonset(objs, v)
    es = yaml.safe_load(daemon_config(objs)["data"]["logferry.yaml"])["elasticsearch"]
    base = "/var/run/secrets/logferry"
    check(es["auth"] == {"username": "elastic", "password_file": f"{base}/basic/password"},
          f"literal username, password by file: {es['auth']}")
    check(es["tls"] == {"ca_file": f"{base}/tls/ca.crt"}, f"ECK CA by file: {es['tls']}")
    _, _, spec, c, vols, _ = ds_parts(objs)
    env = {e["name"] for e in c.get("env", [])}
    check("LOGFERRY_ES_USERNAME" not in env, "no username from the Secret when it is literal")
    srcs = {(s["secret"]["name"], i["key"], i["path"])
            for s in vols["elasticsearch-credentials"]["projected"]["sources"] for i in s["secret"]["items"]}
    check(srcs == {("quickstart-es-elastic-user", "elastic", "basic/password"),
                   ("quickstart-es-http-certs-public", "ca.crt", "tls/ca.crt")}, f"projected ECK secrets: {srcs}")


def t_elastic_cloud(values: Path) -> None:
    """Elastic Cloud: cloud_id instead of endpoints, an API key by file."""
    objs = render(values)
    v = values_of(values)
    assert_daemonset(objs, v)
    es = yaml.safe_load(daemon_config(objs)["data"]["logferry.yaml"])["elasticsearch"]
    check(es["cloud_id"] == v["elasticsearch"]["cloudId"], f"cloud_id passed through: {es}")
    check("endpoints" not in es, "cloud_id replaces endpoints")
    check(es["auth"] == {"api_key_file": "/var/run/secrets/logferry/api-key/api_key"}, f"API key by file: {es['auth']}")


def t_custom_config(values: Path) -> None:
    objs = render(values)
    v = values_of(values)
    assert_daemonset(objs, v)
    cfg = yaml.safe_load(daemon_config(objs)["data"]["logferry.yaml"])
    # Every key set in values.config is in the rendered config, unchanged...
    def walk(want, got, path):
        if isinstance(want, dict):
            check(isinstance(got, dict), f"{path} is a map")
            for k, sub in want.items():
                check(k in got, f"{path}.{k} missing from the rendered config")
                walk(sub, got[k], f"{path}.{k}")
        else:
            check(want == got, f"{path}: {got!r} != {want!r}")
    walk(v["config"], cfg, "config")
    # ...and the chart's defaults it did not override are kept (merge, not replace).
    check(cfg["node_name"] == "${NODE_NAME}", "default node_name kept")
    check(cfg["server"]["listen"] == "0.0.0.0:2020", "default listen kept")
    check(cfg["elasticsearch"]["endpoints"] == ["http://elasticsearch-master:9200"], "default endpoints kept")
    check(cfg["source"]["mode"] == "kubernetes" and cfg["source"]["pods_dir"] == "/var/log/pods",
          "default source keys kept")
    # A different config rolls the pods: the checksum differs from the default render.
    default = render(CHART / "ci" / "default-values.yaml")
    a = ds_parts(objs)[1]["metadata"]["annotations"]["checksum/config"]
    b = ds_parts(default)[1]["metadata"]["annotations"]["checksum/config"]
    check(a != b, "checksum/config changes with the config")


def t_stdout_sink(values: Path) -> None:
    objs = render(values)
    v = values_of(values)
    assert_daemonset(objs, v)
    cfg = yaml.safe_load(daemon_config(objs)["data"]["logferry.yaml"])
    check("elasticsearch" not in cfg, "no elasticsearch section: stdout sink")
    check(cfg["data_dir"] == "/var/lib/logferry-debug" and cfg["server"]["listen"] == "0.0.0.0:2021", f"{cfg}")
    _, _, spec, c, vols, _ = ds_parts(objs)
    check(c["image"] == "ghcr.io/logferry/logferry@" + v["image"]["digest"], f"image by digest: {c['image']}")
    check("elasticsearch-credentials" not in vols, "no credentials volume")
    check(c["livenessProbe"]["periodSeconds"] == 30, "probe timings from values")


def t_network_policy(values: Path) -> None:
    objs = render(values)
    v = values_of(values)
    assert_daemonset(objs, v)
    _, pod, _, c, _, _ = ds_parts(objs)
    np = one(objs, "NetworkPolicy")
    spec = np["spec"]
    check(spec["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(),
          "NetworkPolicy selects the collector pods")
    check(spec["policyTypes"] == ["Ingress"], f"ingress only: {spec['policyTypes']}")
    check(len(spec["ingress"]) == 1, f"one ingress rule: {spec['ingress']}")
    rule = spec["ingress"][0]
    metrics_port = next(p["containerPort"] for p in c["ports"] if p["name"] == "http-metrics")
    check(rule["ports"] == [{"protocol": "TCP", "port": metrics_port}],
          f"only the scrape port is admitted: {rule['ports']}")
    check(rule["from"] == v["networkPolicy"]["metricsFrom"], f"scrapers from values: {rule.get('from')}")
    cfg = yaml.safe_load(daemon_config(objs)["data"]["logferry.yaml"])
    check(not cfg.get("server", {}).get("quitquitquit", False),
          "the DaemonSet serves no /quitquitquit")


def t_aggregator(values: Path) -> None:
    objs = render(values)
    v = values_of(values)
    assert_daemonset(objs, v)
    node = yaml.safe_load(daemon_config(objs)["data"]["logferry.yaml"])
    check("elasticsearch" not in node, "the DaemonSet publishes to NATS instead of Elasticsearch")
    check(node["nats"]["servers"] == v["aggregator"]["nats"]["servers"], f"{node['nats']}")
    check(node["nats"]["stream"]["name"] == "LOGS", f"the DaemonSet creates the stream: {node['nats']}")
    dep = one(objs, "Deployment")
    check(dep["metadata"]["name"].endswith("-aggregator"), dep["metadata"]["name"])
    check(dep["spec"]["replicas"] == 3, "replicas from values")
    pod = dep["spec"]["template"]["spec"]
    check(pod["securityContext"]["runAsNonRoot"] is True, "aggregators run as non-root")
    check(pod["automountServiceAccountToken"] is False, "no Kubernetes API token")
    check(not any("hostPath" in vol for vol in pod["volumes"]), "no host paths")
    cms = [cm for cm in kinds(objs, "ConfigMap") if cm["metadata"]["name"] == dep["metadata"]["name"]]
    check(len(cms) == 1, "the aggregator's ConfigMap is rendered")
    agg = yaml.safe_load(cms[0]["data"]["logferry.yaml"])
    check(agg["source"]["mode"] == "nats", f"{agg['source']}")
    js = agg["source"]["nats"]["jetstream"]
    check(js == {"stream": "LOGS", "durable": "aggregators", "ack_wait": "60s"}, f"{js}")
    check(agg["source"]["nats"]["payload"] == "document", "indexes the node's documents as they are")
    check(agg["elasticsearch"]["endpoints"] == ["https://es.example.com:9200"], f"{agg['elasticsearch']}")
    check(agg["elasticsearch"]["auth"]["password_file"].endswith("/basic/password"), "credentials from files")


def t_edge(values: Path) -> None:
    """The edge values reach the daemon's config unchanged (and `logferry validate`, run on
    every rendered config, accepts them: the schema and the daemon agree at the edge)."""
    objs = render(values)
    cfg = yaml.safe_load(daemon_config(objs)["data"]["logferry.yaml"])
    src, es = cfg["source"], cfg["elasticsearch"]
    check(src["max_open_files"] == 2 and src["max_deleted_files"] == 1, f"limits: {src}")
    check(src["multiline"] == {"continuation_pattern": "^\\s"}, f"multiline: {src['multiline']}")
    check("index" not in es, f"no index next to data_stream: {es}")
    check(es["data_stream"]["namespace"] == "prod", f"data stream: {es}")


def t_max_unavailable(values: Path) -> None:
    """Back to stop-then-start (Kubernetes < 1.25 or by choice): the override renders as given
    (and lint, kubernetes-validate and `logferry validate` run on it like on every ci/ file)."""
    objs = render(values)
    assert_daemonset(objs, values_of(values))
    us = one(objs, "DaemonSet")["spec"]["updateStrategy"]
    check(us["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}, f"updateStrategy: {us}")


def t_update_strategy_variants() -> None:
    """Other valid strategies render as Kubernetes expects; OnDelete carries no rollingUpdate."""
    for args, want in (
        (["--set", "updateStrategy.rollingUpdate.maxSurge=10%"], {"maxSurge": "10%", "maxUnavailable": 0}),
        (["--set", "updateStrategy.rollingUpdate.maxUnavailable=25%",
          "--set", "updateStrategy.rollingUpdate.maxSurge=0%"], {"maxSurge": "0%", "maxUnavailable": "25%"}),
    ):
        us = one(helm_template(*args), "DaemonSet")["spec"]["updateStrategy"]
        check(us == {"type": "RollingUpdate", "rollingUpdate": want}, f"{args}: {us}")
    us = one(helm_template("--set", "updateStrategy.type=OnDelete"), "DaemonSet")["spec"]["updateStrategy"]
    check(us == {"type": "OnDelete"}, f"OnDelete: {us}")


ASSERTIONS = {
    "aggregator-values.yaml": t_aggregator,
    "eck-values.yaml": t_eck,
    "elastic-cloud-values.yaml": t_elastic_cloud,
    "edge-values.yaml": t_edge,
    "default-values.yaml": t_default,
    "max-unavailable-values.yaml": t_max_unavailable,
    "daemonset-disabled-values.yaml": t_daemonset_disabled,
    "sidecar-values.yaml": t_sidecar,
    "monitors-values.yaml": t_monitors,
    "es-auth-secrets-values.yaml": t_es_auth_secrets,
    "custom-config-values.yaml": t_custom_config,
    "stdout-sink-values.yaml": t_stdout_sink,
    "networkpolicy-values.yaml": t_network_policy,
}


def t_every_ci_file_has_assertions() -> None:
    names = {p.name for p in CI_VALUES + EXAMPLE_VALUES}
    check(names == set(ASSERTIONS), f"ci value sets {sorted(names)} vs assertions {sorted(ASSERTIONS)}")


def t_checksum_stable() -> None:
    a = helm_template("-f", str(CHART / "ci" / "default-values.yaml"))
    b = helm_template("-f", str(CHART / "ci" / "default-values.yaml"), "--set", "podLabels.team=x")
    ca = one(a, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    cb = one(b, "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    check(ca == cb, "checksum/config does not change when only non-config values change")


def t_notes() -> None:
    """NOTES.txt renders (client-side dry run) and tells how to check the release works."""
    def notes(values: Path) -> str:
        out = sh("helm", "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client",
                 "-f", str(values)).stdout
        check("NOTES:" in out, f"no NOTES for {values.name}")
        return out.split("NOTES:", 1)[1]
    n = notes(CHART / "ci" / "default-values.yaml")
    for want in (f"rollout status daemonset/{RELEASE}-logferry", "/readyz", "/metrics",
                 "elasticsearch_sent_records_total", "drains for at most 20s", "gets 30s"):
        check(want in n, f"default NOTES lack {want!r}:\n{n}")
    n = notes(CHART / "ci" / "sidecar-values.yaml")
    check("lf-logferry-sidecar" in n and "/quitquitquit" in n and "rollout" not in n, f"sidecar NOTES:\n{n}")


def t_invalid_values(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    check(first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <message>'")
    expect = first[len("# expect: ") :]
    p = sh("helm", "template", RELEASE, str(CHART), "-f", str(path), ok=False)
    check(p.returncode != 0, f"{path.name} was accepted")
    check(expect in p.stderr, f"{path.name}: expected {expect!r} in:\n{p.stderr}")
    second = path.read_text().splitlines()[1]
    check(second.startswith("# helm lint: "), f"{path.name}: second line must be '# helm lint: ...'")
    if second.startswith("# helm lint: rejects"):
        p = sh("helm", "lint", "--strict", str(CHART), "-f", str(path), ok=False)
        check(p.returncode != 0, f"helm lint accepted {path.name}")
        check(expect in p.stdout + p.stderr, f"helm lint {path.name}: expected {expect!r}")


def t_validate_rejects_bad_config() -> None:
    """The binary really validates: the default config plus one typo'd key is refused."""
    binary = logferry_binary()
    check(binary.is_file(), f"{binary} does not exist: build it with `cargo build --workspace --bins`")
    objs = render(CHART / "ci" / "default-values.yaml")
    cfg = yaml.safe_load(daemon_config(objs)["data"]["logferry.yaml"])
    cfg["kubernetes"]["enabeld"] = True
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(cfg, f)
    try:
        p = sh(str(binary), "validate", "--config", f.name, ok=False, env=pod_env(objs))
    finally:
        os.unlink(f.name)
    check(p.returncode == 1, f"logferry validate should exit 1 on an unknown key, got {p.returncode}")
    check("enabeld" in p.stdout + p.stderr, f"the problem names the key:\n{p.stdout}{p.stderr}")


# ---------------------------------------------------------------------------------------------
# Sidecar named template, used from another chart, and the Airflow example built on it
# ---------------------------------------------------------------------------------------------


def render_sidecar_parent() -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        parent = Path(d) / "sidecar-parent"
        shutil.copytree(SIDECAR_PARENT, parent)
        shutil.copytree(CHART, parent / "charts" / "logferry")
        values = {"logferry": values_of(AIRFLOW / "logferry-values.yaml")}
        vf = Path(d) / "values.yaml"
        vf.write_text(yaml.safe_dump(values))
        return helm_template("-f", str(vf), chart=parent)


def t_sidecar_template_from_parent_chart() -> None:
    objs = render_sidecar_parent()
    pod = one(objs, "Pod")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump_all(objs, f)
    try:
        for v in KUBE_VERSIONS:
            p = sh("kubernetes-validate", "--strict", "--quiet", "-k", v, f.name, ok=False)
            check(p.returncode == 0, f"kubernetes-validate {v}:\n{p.stdout}{p.stderr}")
    finally:
        os.unlink(f.name)
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    side = containers["logferry"]
    check(side["args"] == ["run", "--config", CONTAINER_CONFIG], "sidecar args")
    mounts = {m["name"]: m for m in side["volumeMounts"]}
    check(mounts["logs"]["mountPath"] == "/opt/airflow/logs" and mounts["logs"]["readOnly"], "logs ro")
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    check("emptyDir" in vols["logs"], "shared logs volume is an emptyDir")
    check(vols["logferry-config"]["configMap"]["name"] == "airflow-logferry-sidecar", "sidecar ConfigMap")
    check(side["securityContext"]["runAsNonRoot"] is True, "sidecar is not root")
    # Issue 17: the worker pod's task (raw annotation values, as Airflow's KubernetesExecutor
    # writes them) reaches airflow.task of the sidecar config through these variables.
    env = {e["name"]: e for e in side["env"]}
    for k in ["dag_id", "task_id", "run_id", "try_number", "map_index"]:
        ref = env.get(f"AIRFLOW_{k.upper()}", {}).get("valueFrom", {}).get("fieldRef", {})
        check(ref.get("fieldPath") == f"metadata.annotations['{k}']",
              f"AIRFLOW_{k.upper()} from the pod annotation {k}: {env.get(f'AIRFLOW_{k.upper()}')}")
    cms = [cm for cm in kinds(objs, "ConfigMap") if cm["metadata"]["name"] == "airflow-logferry-sidecar"]
    check(len(cms) == 1, "the subchart renders the sidecar ConfigMap the container mounts")


def t_airflow_pod_template_matches() -> None:
    """examples/airflow/pod_template.yaml carries exactly what `logferry.sidecar.*` renders."""
    objs = render_sidecar_parent()
    rendered = one(objs, "Pod")["spec"]
    example = values_of(AIRFLOW / "pod_template.yaml")
    check(example.get("kind") == "Pod", "pod_template.yaml is a Pod")
    spec = example["spec"]
    ex_containers = {c["name"]: c for c in spec["containers"]}
    r_containers = {c["name"]: c for c in rendered["containers"]}
    check(ex_containers.get("logferry") == r_containers["logferry"],
          "the example's logferry container differs from the named template's rendering:\n"
          f"example:  {json.dumps(ex_containers.get('logferry'), sort_keys=True)}\n"
          f"rendered: {json.dumps(r_containers['logferry'], sort_keys=True)}")
    ex_vols = {v["name"]: v for v in spec["volumes"]}
    for v in rendered["volumes"]:
        check(ex_vols.get(v["name"]) == v, f"example volume {v['name']} differs: {ex_vols.get(v['name'])} vs {v}")
    base = ex_containers.get("base")
    check(base is not None, "the main container is named `base` (KubernetesExecutor)")
    cmd = " ".join(base.get("command", []) + base.get("args", []))
    check("/quitquitquit" in cmd and "127.0.0.1:2020" in cmd, "base POSTs /quitquitquit when done")
    bm = {m["name"]: m for m in base["volumeMounts"]}
    check(bm["logs"]["mountPath"] == "/opt/airflow/logs", "base writes logs into the shared emptyDir")
    check(example["metadata"]["annotations"].get("logferry.io/exclude") == "true",
          "worker pods excluded from the node DaemonSet (no double shipping)")
    check(spec.get("restartPolicy") == "Never", "restartPolicy Never")


def t_airflow_settings_match() -> None:
    """The [elasticsearch] settings read what the sidecar config writes."""
    import configparser

    cp = configparser.ConfigParser(interpolation=None)
    cp.read(AIRFLOW / "airflow.cfg")
    es = cp["elasticsearch"]
    vals = values_of(AIRFLOW / "logferry-values.yaml")
    side = vals["sidecar"]["config"]
    check(es["log_id_template"] == side["airflow"]["log_id_template"], "log_id_template agrees")
    check(es["offset_field"] == "offset", "offset_field = offset")
    check(es["host_field"] == "host.name", "host_field = host.name (ECS)")
    check(es.getboolean("json_format") is True, "json_format = True")
    check(cp["logging"].getboolean("remote_logging") is True, "remote_logging on")
    index = side["elasticsearch"]["index"]
    prefix = index.split("%")[0]
    pats = [p.strip() for p in es["index_patterns"].split(",")]
    check(any(re.fullmatch(p.replace(".", r"\.").replace("*", ".*"), prefix + "2026.01.01") for p in pats),
          f"index_patterns {pats} cover the index {index}")
    check(es["host"] == vals["elasticsearch"]["endpoints"][0], "Airflow reads the cluster logferry writes to")


# ---------------------------------------------------------------------------------------------
# Monitoring, image
# ---------------------------------------------------------------------------------------------


def exported_metrics() -> dict[str, str]:
    out = {}
    for line in METRICS_FILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, typ, _labels = line.split()
            out[name] = typ
    return out


PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "atan2",
}


def promql_metrics(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (without a full parser: strings, label matchers,
    ranges, grouping clauses, functions and Grafana variables are removed first)."""
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    e = re.sub(r"\$\{?\w+\}?", " ", e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", e)  # offset 10m
    e = re.sub(r"\b\d+(\.\d+)?([eE][+-]?\d+)?[a-z]*\b", " ", e)  # numbers, durations
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        rest = e[m.end() :].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


# Series Prometheus itself writes for every scrape target (the collector-down/absent alerts).
SCRAPE_SERIES = {"up"}


def known_metric(name: str, exported: dict[str, str]) -> bool:
    if name in exported or name in SCRAPE_SERIES:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and exported.get(name[: -len(suffix)]) == "histogram":
            return True
    return False


def t_promql_parser() -> None:
    got = promql_metrics('sum by (le) (rate(a_bucket{x=~"$i", y="b c"}[$__rate_interval])) / on (x) b_total > 1e3')
    check(got == {"a_bucket", "b_total"}, f"promql_metrics self-test: {got}")
    got = promql_metrics("c_total unless c_total offset 10m > 256 * 1024 and d_bytes")
    check(got == {"c_total", "d_bytes"}, f"promql_metrics self-test: {got}")


def t_dashboard_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exported = exported_metrics()
    exprs = []

    def walk(o):
        if isinstance(o, dict):
            if isinstance(o.get("expr"), str):
                exprs.append(o["expr"])
            q = o.get("query")
            if isinstance(q, dict) and isinstance(q.get("query"), str):
                exprs.append(re.sub(r"^label_values\((\w+).*", r"\1", q["query"]))
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(dash)
    check(len(exprs) >= 20, f"dashboard has {len(exprs)} queries")
    used = set()
    for e in exprs:
        names = promql_metrics(e)
        check(names, f"query selects no metric: {e}")
        unknown = [n for n in names if not known_metric(n, exported)]
        check(not unknown, f"dashboard queries metrics logferry does not export: {unknown} in {e}")
        used |= names
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    check(all(p.get("targets") for p in panels), "every panel has a query")
    # cluster -> node -> collector, each a label_values() variable narrowed by the ones before.
    variables = {t["name"]: t for t in dash["templating"]["list"]}
    for name, label in (("cluster", "cluster"), ("node", "node"), ("instance", "instance")):
        check(name in variables, f"dashboard variable {name}")
        q = variables[name]["query"]["query"]
        check(q.startswith("label_values(") and q.endswith(f", {label})"), f"${name} from label_values(..., {label}): {q}")
        check(variables[name].get("allValue") == ".*", f"${name} 'All' also matches series without the label")
    selector = 'cluster=~"$cluster", node=~"$node", instance=~"$instance"'
    for p in panels:
        for t in p["targets"]:
            check(t["expr"].count(selector) >= 1, f"panel {p['title']!r} filters by cluster, node and collector: {t['expr']}")
    check(len({p["id"] for p in dash["panels"]}) == len(dash["panels"]), "panel ids unique")


def t_alert_metrics() -> None:
    exported = exported_metrics()
    rules = yaml.safe_load(ALERTS.read_text())
    for g in rules["groups"]:
        for r in g["rules"]:
            names = promql_metrics(r["expr"])
            unknown = [n for n in names if not known_metric(n, exported)]
            check(names and not unknown, f"alert {r.get('alert')} uses unexported metrics {unknown}")
    for g in rules["groups"]:
        for r in g["rules"]:
            a = r.get("annotations", {})
            check(r.get("labels", {}).get("severity") in ("critical", "warning", "info"),
                  f"alert {r['alert']} has a severity")
            check(all(a.get(k) for k in ("summary", "description", "runbook_url")),
                  f"alert {r['alert']} has summary, description and runbook_url")
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load(ALERT_TESTS.read_text())
    tested = {t["alertname"] for tc in tests["tests"] for t in tc.get("alert_rule_test", []) if t.get("exp_alerts")}
    check(alerts <= tested, f"alerts without a firing test: {sorted(alerts - tested)}")


def t_promtool_check() -> None:
    sh("promtool", "check", "rules", str(ALERTS))


def t_promtool_test() -> None:
    sh("promtool", "test", "rules", ALERT_TESTS.name, cwd=ALERT_TESTS.parent)


def t_hadolint() -> None:
    sh("hadolint", str(ROOT / "Dockerfile"))


def t_dockerfile_base_images_pinned() -> None:
    froms = [l.split()[1] for l in (ROOT / "Dockerfile").read_text().splitlines() if l.startswith("FROM ")]
    check(froms, "the Dockerfile has FROM lines")
    for image in froms:
        digest = image.partition("@sha256:")[2]
        check(len(digest) == 64 and all(c in "0123456789abcdef" for c in digest),
              f"base image pinned by digest: {image}")


def t_dockerfile_builds_the_tested_binary() -> None:
    text = (ROOT / "Dockerfile").read_text()
    check(re.search(r"cargo build --release --locked --target \S+ -p logferry\b", text) is not None,
          "Dockerfile builds -p logferry --release --locked")
    crate = (ROOT / "crates" / "logferry" / "Cargo.toml").read_text()
    check(re.search(r'^name = "logferry"', crate, re.M) is not None, "crates/logferry is package logferry")
    check('ENTRYPOINT ["/logferry"]' in text, "ENTRYPOINT /logferry")
    check(f'CMD ["run", "--config", "{CONTAINER_CONFIG}"]' in text, "CMD matches the chart's config path")
    for label in ("version", "source", "licenses"):
        check(f"org.opencontainers.image.{label}=" in text, f"OCI label {label}")
    check(re.search(r"^USER \S+", text, re.M) is not None, "USER set")
    ignore = (ROOT / ".dockerignore").read_text().split()
    check("target/" in ignore and ".git/" in ignore, ".dockerignore excludes target/ and .git/")
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    ws = (ROOT / "Cargo.toml").read_text()
    m = re.search(r'^\[workspace\.package\][^\[]*?^version = "([^"]+)"', ws, re.M | re.S)
    check(m and chart["appVersion"] == m.group(1), f"appVersion {chart['appVersion']} = crate version")
    check(f'ARG VERSION={chart["appVersion"]}' in text, "image VERSION default = appVersion")



# ---------------------------------------------------------------------------------------------
# values.yaml documentation (helm-docs style `# --` comments) and the README's values table
# ---------------------------------------------------------------------------------------------

README = CHART / "README.md"
TABLE_START, TABLE_END = "<!-- values-table:start -->", "<!-- values-table:end -->"


def values_docs() -> list[tuple[str, str, str, str]]:
    """(key path, type, default, description) for every `# --` documented key of values.yaml."""
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    rows, stack, pending, default_override = [], [], None, None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("# -- "):
            pending = [s[5:]]
            continue
        if s.startswith("# @default -- "):
            default_override = s[len("# @default -- ") :]
            continue
        if s.startswith("#"):
            if pending is not None and s.startswith("# "):
                pending.append(s[2:])
            continue
        m = re.match(r"^(\s*)([A-Za-z0-9_.-]+):", line)
        if not m:
            continue
        indent, key = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        path = [k for _, k in stack]
        if pending is not None:
            value = values
            for k in path:
                value = value[k]
            typ = {dict: "object", list: "list", bool: "bool", int: "int", str: "string"}.get(
                type(value), type(value).__name__
            )
            default = default_override or f"`{json.dumps(value)}`"
            rows.append((".".join(path), typ, default, " ".join(pending)))
        pending, default_override = None, None
    return rows


def values_table() -> str:
    out = ["| Key | Type | Default | Description |", "|---|---|---|---|"]
    for key, typ, default, desc in values_docs():
        default, desc = default.replace("|", "\\|"), desc.replace("|", "\\|")
        out.append(f"| `{key}` | {typ} | {default} | {desc} |")
    return "\n".join(out)


def t_values_documented() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = {k for k, *_ in values_docs()}

    def walk(o, path):
        for k, v in o.items():
            p = f"{path}.{k}" if path else k
            if p in documented:
                continue  # documented as a whole (its sub-keys may be documented too)
            check(isinstance(v, dict) and v, f"values.yaml key {p} has no `# --` doc")
            walk(v, p)

    walk(values, "")
    schema = json.loads((CHART / "values.schema.json").read_text())
    check(set(values) <= set(schema["properties"]), "every top-level value is in the schema")


def t_readme_values_table() -> None:
    text = README.read_text()
    check(TABLE_START in text and TABLE_END in text, "README has the values-table markers")
    current = text.split(TABLE_START)[1].split(TABLE_END)[0].strip()
    check(current == values_table(),
          "charts/logferry/README.md values table is stale: run "
          "`target/tools/venv/bin/python tests/chart/test_chart.py --write-readme`")


def write_readme() -> None:
    text = README.read_text()
    head, rest = text.split(TABLE_START)
    _, tail = rest.split(TABLE_END)
    README.write_text(f"{head}{TABLE_START}\n{values_table()}\n{TABLE_END}{tail}")


def main() -> int:
    if sys.argv[1:] == ["--write-readme"]:
        write_readme()
        return 0
    for tool in ("helm", "kubernetes-validate", "promtool", "hadolint"):
        if shutil.which(tool) is None:
            print(f"tests/chart: {tool} not on PATH: run tests/install-tools.sh", file=sys.stderr)
            return 1
    run_check("ci value sets all have assertions", t_every_ci_file_has_assertions)
    run_check("every value documented (helm-docs style)", t_values_documented)
    run_check("README values table matches values.yaml", t_readme_values_table)
    for values in CI_VALUES + EXAMPLE_VALUES:
        n = values.name
        run_check(f"helm lint --strict -f ci/{n}", t_lint, values)
        run_check(f"kubernetes-validate --strict ({', '.join(KUBE_VERSIONS)}) ci/{n}", t_kubernetes_validate, values)
        if n in ASSERTIONS:
            run_check(f"rendered objects ci/{n}", ASSERTIONS[n], values)
        if rendered_configs(render(values)):
            run_check(f"logferry validate on rendered config ci/{n}", t_logferry_validate, values)
    run_check("checksum/config stable when the config is unchanged", t_checksum_stable)
    run_check("NOTES.txt tells how to check the release", t_notes)
    run_check("updateStrategy: percentages and OnDelete render as Kubernetes expects", t_update_strategy_variants)
    for path in INVALID_VALUES:
        run_check(f"rejected with a clear message: invalid-values/{path.name}", t_invalid_values, path)
    run_check("logferry validate rejects a typo'd config key", t_validate_rejects_bad_config)
    run_check("sidecar named template from a parent chart", t_sidecar_template_from_parent_chart)
    run_check("airflow pod_template.yaml = rendered sidecar", t_airflow_pod_template_matches)
    run_check("airflow [elasticsearch] settings match logferry's documents", t_airflow_settings_match)
    run_check("promql metric-name extraction", t_promql_parser)
    run_check("dashboard queries only exported metrics", t_dashboard_metrics)
    run_check("alert rules use only exported metrics; each alert tested", t_alert_metrics)
    run_check("promtool check rules", t_promtool_check)
    run_check("promtool test rules", t_promtool_test)
    run_check("hadolint Dockerfile", t_hadolint)
    run_check("Dockerfile builds the tested binary", t_dockerfile_builds_the_tested_binary)
    run_check("Dockerfile base images pinned by digest", t_dockerfile_base_images_pinned)
    failed = [n for n, err in RESULTS if err]
    print(f"chart: {len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
