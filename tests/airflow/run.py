#!/usr/bin/env python3
"""Airflow's own Elasticsearch task handler reads what logferry shipped (issue 17).

Runs with the Airflow venv that tests/install-tools.sh builds (apache-airflow 2.10.5,
apache-airflow-providers-elasticsearch 6.3.5; tests/airflow/requirements.txt pins every package),
from `.ci/run` after `cargo build --workspace --bins`. Nothing here is imitated that Airflow can do
itself:

1. A SQLite metadata DB (`airflow db migrate`), the DAG tests/airflow/dags/logferry_e2e.py and one
   DAG run with its task instances queued (try 1), as the scheduler leaves them.
2. For each deployment mode, a real worker: `airflow tasks run <dag> <task> <run_id> --local`
   (the KubernetesExecutor's command), with the `[elasticsearch]` settings of
   examples/airflow/airflow.cfg (`json_format = True`; `host` is the Elasticsearch double):
   * `sidecar_files`: `write_stdout = False`; the worker writes Airflow's task log file
     `dag_id=…/run_id=…/task_id=…/attempt=1.log`, logferry reads it with the sidecar config the
     chart renders from examples/airflow/logferry-values.yaml (`source.mode: files`,
     `airflow.task` from the environment; only paths, data_dir, endpoint and port replaced) and
     the environment of the logferry container of examples/airflow/pod_template.yaml (the
     worker pod's annotations through the downward API);
   * `kubelet_api`: `write_stdout = True`; this script is the container runtime: it stamps each
     line of the worker's stdout/stderr as it arrives and writes CRI lines (16 KiB `P` splits)
     to kubelet's `/var/log/pods/<ns>_<pod>_<uid>/base/0.log`; logferry (kubelet layout) gets
     the worker pod (Airflow's labels and annotations) from the Kubernetes API double;
   * `kubelet_no_api`: the same layout, `kubernetes.enabled: false`.
3. The recorded log is handed to logferry in parts: after each part, `logferry run --once` (a
   restart every time, resuming from its checkpoints) ships to the Elasticsearch double
   (`es-double`), then the UI's poll runs: `TaskLogReader().read_log_chunks(ti, 1, metadata)`,
   i.e. the real `ElasticsearchTaskHandler.read()` with the metadata of the previous poll
   (`offset > last`). After the last part, one more poll must report `end_of_log`.
4. Checks: one host; the polled chunks joined equal a one-shot read; every line of the log
   (each JSON record's `message`, each text line) appears exactly once and in file order —
   in kubelet layout without the API, from the first record that names its task on; the
   `end_of_log` record ends the log; `logferry verify --log-id` finds the same documents.

Prints the handler's one-shot view of each mode and "N passed, N failed"; exits 1 on a failure.
"""
import configparser
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BIN = os.path.join(TARGET, "debug")
VENV_BIN = os.path.dirname(sys.executable)
DAG_ID = "logferry_e2e"
MODES = ("sidecar_files", "kubelet_api", "kubelet_no_api")
PARTS = 5
CRI_MAX = 16 * 1024  # containerd splits longer lines into P records of this size
NODE = "e2e-node"
NAMESPACE = "airflow"
MARKER = re.compile(r"#(rec|print|text|trace|long)-\d{3}#")

results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f"\n     {detail}"), flush=True)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_listening(args, log_path):
    """Starts a double; returns (process, the address it printed after 'listening on ')."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(log_path, "wb"), text=True)
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        raise RuntimeError(f"{args[0]} did not start: {line!r}, see {log_path}")
    return proc, line.split("listening on ", 1)[1].strip()


def cri_time(ns):
    """RFC 3339 with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano, as containerd)."""
    secs, frac = divmod(ns, 10**9)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def airflow_env(tmp, es_url):
    """Airflow settings: examples/airflow/airflow.cfg's [elasticsearch], the double as host."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(os.path.join(ROOT, "examples/airflow/airflow.cfg"))
    env = {
        "AIRFLOW_HOME": os.path.join(tmp, "airflow-home"),
        "AIRFLOW__CORE__DAGS_FOLDER": os.path.join(ROOT, "tests/airflow/dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp}/airflow.db",
        "AIRFLOW__LOGGING__REMOTE_LOGGING": cfg["logging"]["remote_logging"],
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": os.path.join(tmp, "unused-logs"),
    }
    for key, value in cfg["elasticsearch"].items():
        env[f"AIRFLOW__ELASTICSEARCH__{key.upper()}"] = value
    env["AIRFLOW__ELASTICSEARCH__HOST"] = es_url
    return env


def sidecar_values():
    with open(os.path.join(ROOT, "examples/airflow/logferry-values.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)["sidecar"]["config"]


def setup_dag_run():
    """One DAG run, its task instances queued with try 1 (what the scheduler leaves)."""
    import pendulum
    from airflow.models import DagBag
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunType

    dag = DagBag(include_examples=False).get_dag(DAG_ID)
    dag.sync_to_db()
    date = pendulum.now("UTC").replace(microsecond=123456)
    run_id = f"manual__{date.isoformat()}"
    with create_session() as s:
        dr = dag.create_dagrun(
            run_id=run_id,
            run_type=DagRunType.MANUAL,
            execution_date=date,
            data_interval=(date, date),
            state=DagRunState.RUNNING,
            external_trigger=True,
            session=s,
        )
        for ti in dr.get_task_instances(session=s):
            ti.state = TaskInstanceState.QUEUED
            ti.try_number = 1
    return run_id


def task_instance(task_id, run_id):
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as s:
        ti = s.query(TaskInstance).filter_by(dag_id=DAG_ID, task_id=task_id, run_id=run_id).one()
        ti.dag_run  # loaded while the session is open
        s.expunge(ti)
        return ti


def run_worker(task_id, run_id, env, write_stdout, base_log_folder):
    """`airflow tasks run --local`; returns [(ns, stream, bytes line without \\n)] in arrival order."""
    env = dict(env)
    env["AIRFLOW__ELASTICSEARCH__WRITE_STDOUT"] = str(write_stdout)
    env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = base_log_folder
    cmd = [os.path.join(VENV_BIN, "airflow"), "tasks", "run", DAG_ID, task_id, run_id, "--local"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines, lock = [], threading.Lock()

    def pump(pipe, stream):
        for raw in iter(pipe.readline, b""):
            now = time.time_ns()
            with lock:
                lines.append((now, stream, raw.rstrip(b"\n")))

    threads = [threading.Thread(target=pump, args=(p, n)) for p, n in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))]
    for t in threads:
        t.start()
    rc = proc.wait(timeout=600)
    for t in threads:
        t.join()
    if rc != 0:
        sys.stdout.write(b"\n".join(l for _, _, l in lines).decode(errors="replace"))
        raise RuntimeError(f"airflow tasks run {task_id} exited {rc}")
    return lines


def cri_records(lines):
    """CRI log lines as containerd writes them: long lines split into 16 KiB P records."""
    out = []
    for ns, stream, line in lines:
        chunks = [line[i : i + CRI_MAX] for i in range(0, len(line), CRI_MAX)] or [b""]
        parts = [
            f"{cri_time(ns)} {stream} {'F' if i == len(chunks) - 1 else 'P'} ".encode() + c + b"\n"
            for i, c in enumerate(chunks)
        ]
        out.append(b"".join(parts))
    return out


def part_bounds(log_lines):
    """PARTS parts, each after the first starting with a text line (not a JSON record), where
    only the file's earlier records can name the task (and logferry has just restarted)."""
    bounds = [0]
    for k in range(1, PARTS):
        i = max(len(log_lines) * k // PARTS, bounds[-1] + 1)
        while i < len(log_lines) and shown_text(log_lines[i])[1]:
            i += 1
        bounds.append(i)
    bounds.append(len(log_lines))
    if len(set(bounds)) != len(bounds):
        raise RuntimeError(f"too few text lines to cut {PARTS} parts: {bounds}")
    return bounds


def shown_text(line):
    """What the handler shows for one log line: a JSON record's `message`, else the line."""
    text = line.decode("utf-8")
    if text.startswith("{"):
        try:
            return json.loads(text)["message"], True
        except (ValueError, KeyError):
            pass
    return text, False


def chart_sidecar_config():
    """The sidecar's logferry.yaml as the chart renders it with examples/airflow/logferry-values.yaml."""
    out = subprocess.run(
        ["helm", "template", "airflow-logs", os.path.join(ROOT, "charts/logferry"),
         "-f", os.path.join(ROOT, "examples/airflow/logferry-values.yaml")],
        check=True, capture_output=True, text=True,
    ).stdout
    for obj in yaml.safe_load_all(out):
        if obj and obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-sidecar"):
            return yaml.safe_load(obj["data"]["logferry.yaml"])
    raise RuntimeError("the chart rendered no sidecar ConfigMap")


def sidecar_env(task_id, run_id):
    """The logferry container's environment in examples/airflow/pod_template.yaml (which the
    chart tests hold equal to the chart's rendering), resolved for the worker pod of `task_id`:
    downward-API annotations as Airflow's executor writes them (no map_index: unmapped)."""
    with open(os.path.join(ROOT, "examples/airflow/pod_template.yaml"), encoding="utf-8") as f:
        pod = yaml.safe_load(f)
    annotations = {"dag_id": DAG_ID, "task_id": task_id, "run_id": run_id, "try_number": "1"}
    env = {}
    (side,) = [c for c in pod["spec"]["containers"] if c["name"] == "logferry"]
    for e in side["env"]:
        path = e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
        m = re.fullmatch(r"metadata\.annotations\['(.+)'\]", path)
        if m:
            env[e["name"]] = annotations.get(m.group(1), "")
        elif path == "spec.nodeName":
            env[e["name"]] = NODE
        elif path == "metadata.uid":
            env[e["name"]] = str(uuid.uuid4())
    return env


def logferry_config(mode, tmp, es_url, watch_dir, port):
    if mode == "sidecar_files":
        # The chart's sidecar config; only where it reads, writes and listens is changed.
        config = chart_sidecar_config()
        config["data_dir"] = os.path.join(tmp, "data")
        config["source"]["paths"] = [watch_dir + "/**/*.log"]
        config["elasticsearch"] = {"endpoints": [es_url], "index": config["elasticsearch"]["index"]}
        config["server"]["listen"] = f"127.0.0.1:{port}"
    else:
        values = sidecar_values()
        os.makedirs(os.path.join(watch_dir, "containers"), exist_ok=True)
        config = {
            "node_name": NODE,
            "data_dir": os.path.join(tmp, "data"),
            "source": {
                "pods_dir": os.path.join(watch_dir, "pods"),
                "containers_dir": os.path.join(watch_dir, "containers"),
            },
            "kubernetes": {"enabled": mode == "kubelet_api", "lookup_wait": "60s"},  # generous: loaded CI
            "elasticsearch": {"endpoints": [es_url], "index": values["elasticsearch"]["index"]},
            "airflow": dict(values["airflow"]),
            "server": {"listen": f"127.0.0.1:{port}"},
        }
    config["elasticsearch"]["batch"] = {"timeout": "100ms"}
    path = os.path.join(tmp, "logferry.yaml")
    # Variables expand in the text before YAML parsing: quote them (the run id has ':', '+').
    text = re.sub(r": (\$\{[A-Z_]+:-\})\n", r": '\1'\n", yaml.safe_dump(config, sort_keys=False))
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def worker_pod(task_id, run_id, pod, uid):
    """The worker pod as Airflow's PodGenerator builds it: sanitised labels, raw annotations."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod,
            "namespace": NAMESPACE,
            "uid": uid,
            "labels": {
                "dag_id": DAG_ID,
                "task_id": task_id,
                "run_id": "manual__" + re.sub(r"[^A-Za-z0-9_.-]", "", run_id[8:])[:45] + "-5d3b7c8a1",
                "try_number": "1",
                "kubernetes_executor": "True",
                "airflow-worker": "1",
            },
            "annotations": {"dag_id": DAG_ID, "task_id": task_id, "run_id": run_id, "try_number": "1"},
        },
        "spec": {"nodeName": NODE, "containers": [{"name": "base", "image": "apache/airflow:2.10.5"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "base",
                    "image": "apache/airflow:2.10.5",
                    "imageID": "",
                    "containerID": "containerd://" + uuid.uuid4().hex * 2,
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "state": {"running": {"startedAt": "2026-12-04T10:00:00Z"}},
                }
            ],
        },
    }


def run_mode(mode, run_id, env, tmp_root, es_url):
    from airflow.utils.log.log_reader import TaskLogReader

    tmp = os.path.join(tmp_root, mode)
    os.makedirs(tmp)
    watch = os.path.join(tmp, "watch")
    os.makedirs(watch)
    files_mode = mode == "sidecar_files"
    worker_logs = os.path.join(tmp, "worker-logs")
    lines = run_worker(mode, run_id, env, write_stdout=not files_mode, base_log_folder=worker_logs)

    lf_env = dict(os.environ)
    kube = None
    if files_mode:
        rel = os.path.join(f"dag_id={DAG_ID}", f"run_id={run_id}", f"task_id={mode}", "attempt=1.log")
        with open(os.path.join(worker_logs, rel), "rb") as f:
            raw = f.read()
        records = [l + b"\n" for l in raw.split(b"\n")[:-1]]
        log_lines = [l.rstrip(b"\n") for l in records]
        target = os.path.join(watch, rel)
        lf_env.update(sidecar_env(mode, run_id))
    else:
        records = cri_records(lines)
        log_lines = [l for _, _, l in lines]
        pod = f"logferry-e2e-{mode.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
        uid = str(uuid.uuid4())
        target = os.path.join(watch, "pods", f"{NAMESPACE}_{pod}_{uid}", "base", "0.log")
        if mode == "kubelet_api":
            pods_dir = os.path.join(tmp, "api-objects")
            os.makedirs(pods_dir)
            with open(os.path.join(pods_dir, "pod.json"), "w") as f:
                json.dump(worker_pod(mode, run_id, pod, uid), f)
            with open(os.path.join(pods_dir, "namespace.json"), "w") as f:
                json.dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE, "uid": str(uuid.uuid4())}}, f)
            kubeconfig = os.path.join(tmp, "kubeconfig")
            kube, _ = start_listening(
                [os.path.join(BIN, "kube-api-double"), "--listen", "127.0.0.1:0", "--kubeconfig-out", kubeconfig, "--pods-dir", pods_dir],
                os.path.join(tmp, "kube-api-double.log"),
            )
            lf_env["KUBECONFIG"] = kubeconfig
    os.makedirs(os.path.dirname(target), exist_ok=True)
    config = logferry_config(mode, tmp, es_url, watch, free_port())

    # The lines the handler must show, in file order.
    expected = []
    seen_identity = mode != "kubelet_no_api"
    for line in log_lines:
        text, is_record = shown_text(line)
        seen_identity = seen_identity or (is_record and '"log_id"' in line.decode())
        if seen_identity:
            expected.append(text)

    ti = task_instance(mode, run_id)
    reader = TaskLogReader()
    metadata, polled, hosts, end_seen = {}, [], set(), False
    bounds = part_bounds(log_lines)
    if not files_mode:
        # The runtime's stdout and stderr writers stamp lines independently: a line written
        # after another can carry an earlier timestamp. Here the first line of every part is
        # stamped 1 µs before the last line of the part before (logferry restarts in between).
        for b in bounds[1:-1]:
            ns, stream, line = lines[b]
            lines[b] = (lines[b - 1][0] - 1000, stream, line)
        records = cri_records(lines)
    try:
        for k in range(PARTS):
            with open(target, "ab") as f:
                f.write(b"".join(records[bounds[k] : bounds[k + 1]]))
            out = subprocess.run(
                [os.path.join(BIN, "logferry"), "run", "--once", "--config", config],
                env=lf_env, capture_output=True, text=True, timeout=300,
            )
            if not check(f"{mode}: logferry run --once (part {k + 1}/{PARTS}) exits 0", out.returncode == 0, out.stderr[-3000:]):
                return
            # The UI's poll: the metadata goes to the browser and back as JSON.
            logs, metadata = reader.read_log_chunks(ti, 1, json.loads(json.dumps(metadata)))
            logs = logs[0]  # the chunks of try 1: [(host, text)]
            for host, text in logs:
                hosts.add(host)
                if text:
                    polled.append(text)
            end_seen = bool(metadata.get("end_of_log"))
            if end_seen and k < PARTS - 1:
                check(f"{mode}: end_of_log only at the end", False, f"after part {k + 1}")
    finally:
        if kube:
            kube.terminate()
            kube.wait()

    check(f"{mode}: the poll after the last part reports end_of_log", end_seen, str(metadata))
    logs, whole_meta = reader.read_log_chunks(ti, 1, {})
    logs = logs[0]
    whole = "\n".join(text for _, text in logs)
    print(f"--- {mode}: the handler's one-shot view ({len(whole)} characters) ---")
    print("\n".join("  | " + (l if len(l) < 200 else l[:200] + f"… ({len(l)} characters)") for l in whole.split("\n")))
    print(f"--- end of {mode} ---")
    check(f"{mode}: one host ({hosts})", len(hosts) == 1 and len(logs) == 1, str(hosts))
    check(f"{mode}: the one-shot read reports end_of_log", bool(whole_meta.get("end_of_log")), str(whole_meta))
    check(
        f"{mode}: the polled chunks, joined, are the one-shot view (nothing skipped while polling)",
        "\n".join(polled) == whole,
        f"polled {sum(map(len, polled))} characters in {len(polled)} chunks, one-shot {len(whole)}",
    )
    # Every line once, in file order.
    pos, missing = 0, []
    for text in expected:
        if text == "end_of_log":
            continue
        i = whole.find(text, pos)
        if i < 0:
            missing.append(text[:120])
        else:
            pos = i + len(text)
    check(f"{mode}: every line of the log ({len(expected)}) shown, in file order", not missing, f"missing or out of order: {missing[:5]}")
    markers = [m.group(0) for t in expected for m in [MARKER.search(t)] if m]
    dupes = [m for m in markers if whole.count(m) != 1]
    check(f"{mode}: each of the {len(markers)} numbered task lines shown exactly once", len(markers) == 60 and not dupes, f"{len(markers)} markers, not once: {dupes[:5]}")
    check(f"{mode}: the log ends with the end_of_log record", expected and expected[-1] == "end_of_log", str(expected[-1:]))

    from airflow.providers.elasticsearch.log.es_task_handler import ElasticsearchTaskHandler

    handler = reader.log_handler
    assert isinstance(handler, ElasticsearchTaskHandler), handler
    log_id = handler._render_log_id(ti, 1)
    out = subprocess.run(
        [os.path.join(BIN, "logferry"), "verify", "--endpoint", es_url, "--index", "airflow-logs-*", "--log-id", log_id, "--expect", str(len(expected))],
        capture_output=True, text=True, timeout=120,
    )
    check(f"{mode}: logferry verify --log-id finds the {len(expected)} documents the handler read", out.returncode == 0, out.stdout + out.stderr)


def main():
    for b in ("logferry", "es-double", "kube-api-double"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            sys.exit(f"tests/airflow: {BIN}/{b} missing: run 'cargo build --workspace --bins' first")
    tmp = tempfile.mkdtemp(prefix="logferry-airflow-")
    es, addr = start_listening([os.path.join(BIN, "es-double"), "--listen", "127.0.0.1:0"], os.path.join(tmp, "es-double.log"))
    es_url = f"http://{addr}"
    try:
        env = airflow_env(tmp, es_url)
        os.environ.update(env)
        t0 = time.monotonic()
        subprocess.run([os.path.join(VENV_BIN, "airflow"), "db", "migrate"], env=os.environ, check=True, capture_output=True)
        print(f"airflow db migrate: {time.monotonic() - t0:.1f} s", flush=True)
        run_id = setup_dag_run()
        import logging

        logging.getLogger("elastic_transport").setLevel(logging.WARNING)
        for mode in MODES:
            t0 = time.monotonic()
            run_mode(mode, run_id, env, tmp, es_url)
            print(f"{mode}: {time.monotonic() - t0:.1f} s", flush=True)
    finally:
        es.terminate()
        es.wait()
    print(f"{results['passed']} passed, {results['failed']} failed")
    if results["failed"]:
        print(f"tests/airflow: kept {tmp} for inspection")
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
