#!/usr/bin/env python3
"""Builds the quickstart node log tree under examples/node-logs/var/log/.

The tree looks like what the kubelet and a CRI runtime leave on a node
(see the kubelet's
pkg/kubelet/kuberuntime/helpers.go and legacy.go):

    var/log/pods/<namespace>_<pod>_<pod-uid>/<container>/0.log      active file
    var/log/pods/.../<container>/0.log.20261122-134510             rotated sibling
    var/log/containers/<pod>_<namespace>_<container>-<64 hex>.log  -> ../pods/.../0.log

Every line uses CRI framing, `<timestamp> <stdout|stderr> <P|F> <message>`:
containerd style timestamps (Go RFC3339Nano: trailing zeros of the fraction
trimmed, `Z`) for most files, CRI-O/conmon style (always nine digits and
`+00:00`) for the sshd container. One long Airflow record is cut into
`P`, `P`, `F` chunks. Message text is real log text from Loghub
(tests/corpus/loghub, see SOURCE.md next to this script).

The output is a pure function of the corpus files: no clock, no network, a
fixed random seed. Run it from anywhere:

    python3 examples/node-logs/generate.py          # rewrite var/
    python3 examples/node-logs/generate.py --check  # exit 1 if var/ differs

Standard library only (Python 3.8+).
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "corpus", "loghub"))
SEED = 20261122
EPOCH = dt.datetime(2026, 11, 22, 13, 40, 0, tzinfo=dt.timezone.utc)
# The kubelet renamed the httpd container's 0.log at this instant (timestampFormat
# "20060102-150405" in pkg/kubelet/logs/container_log_manager.go).
ROTATED_AT = dt.datetime(2026, 11, 22, 13, 45, 10, tzinfo=dt.timezone.utc)
# Chunk size for the long line. containerd's default max_container_log_line_size
# is 16 KiB; a smaller value keeps the example tree small (the framing is the same).
SPLIT_BYTES = 1024
MAX_TREE_BYTES = 100 * 1024


def corpus_lines(name, start, count):
    """`count` consecutive non-empty lines of <name>_2k.log (or, where only the
    first lines were copied, <name>_2k.head.log) from line `start`, with the
    CRLF/LF line end removed (containerd strips it too)."""
    path = os.path.join(CORPUS, name + "_2k.log")
    if not os.path.exists(path):
        path = os.path.join(CORPUS, name + "_2k.head.log")
    with open(path, "rb") as f:
        lines = [l.rstrip(b"\r") for l in f.read().split(b"\n") if l.rstrip(b"\r")]
    picked = lines[start:start + count]
    if len(picked) != count:
        raise SystemExit(f"{path}: wanted lines {start}..{start + count}, file has {len(lines)}")
    return [l.decode("utf-8") for l in picked]


def containerd_ts(nanos):
    """Go time.RFC3339Nano of a UTC instant: fraction without trailing zeros,
    and no fraction at all when it is zero."""
    secs, frac = divmod(nanos, 10**9)
    base = dt.datetime.fromtimestamp(secs, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def crio_ts(nanos):
    """conmon's `%Y-%m-%dT%H:%M:%S.%09ld%c%02d:%02d` on a UTC node."""
    secs, frac = divmod(nanos, 10**9)
    base = dt.datetime.fromtimestamp(secs, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}+00:00"


def ns(t):
    return int(t.timestamp()) * 10**9


class Clock:
    """Strictly increasing nanosecond timestamps with random gaps."""

    def __init__(self, rng, start_nanos):
        self.rng = rng
        self.now = start_nanos

    def tick(self, min_ms=3, max_ms=2500):
        self.now += self.rng.randint(min_ms * 10**6, max_ms * 10**6) + self.rng.randint(0, 999)
        return self.now


def cri(ts, stream, tag, msg):
    return f"{ts} {stream} {tag} {msg}\n"


def uid_for(ns_name, pod):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"logferry-example/{ns_name}/{pod}"))


def container_id(ns_name, pod, container):
    return hashlib.sha256(f"{ns_name}/{pod}/{container}".encode()).hexdigest()


# ---------------------------------------------------------------------------
# The containers


def httpd(rng):
    """Apache error log (Apache_2k): `[error]` lines on stderr. 24 lines before the
    rotation go to the rotated sibling, 30 after it to the active file."""
    lines = corpus_lines("Apache", 0, 54)
    clock = Clock(rng, ns(EPOCH) + 1_234_000)
    rotated, active = [], []
    last_rotated = 0
    for i, msg in enumerate(lines):
        if i == 24:
            clock.now = max(clock.now, ns(ROTATED_AT)) + 183_000_000
        t = clock.tick(20, 9000)
        if i == 3:
            t = clock.now = (t // 10**9 + 1) * 10**9  # whole second: "...:07Z", no fraction
        if i == 9:
            t = clock.now = (t // 10**6 + 1) * 10**6  # trailing zeros trimmed: ".123Z"
        stream = "stderr" if "[error]" in msg else "stdout"
        if i < 24:
            last_rotated = t
        (rotated if i < 24 else active).append(cri(containerd_ts(t), stream, "F", msg))
    assert last_rotated < ns(ROTATED_AT) < clock.now
    return {"0.log": active, "0.log.20261122-134510": rotated}


def sshd(rng):
    """OpenSSH (OpenSSH_2k) as written by CRI-O/conmon: nine fraction digits and
    `+00:00`; lines read in one buffer share one timestamp."""
    lines = corpus_lines("OpenSSH", 0, 36)
    clock = Clock(rng, ns(EPOCH) + 512_000_000)
    out, i = [], 0
    while i < len(lines):
        t = clock.tick(40, 30000)
        burst = rng.randint(1, 4)
        for msg in lines[i:i + burst]:
            out.append(cri(crio_ts(t), "stderr", "F", msg))
        i += burst
    return {"0.log": out}


def zookeeper(rng):
    """ZooKeeper (Zookeeper_2k); WARN lines on stdout like log4j's console appender."""
    lines = corpus_lines("Zookeeper", 0, 40)
    clock = Clock(rng, ns(EPOCH) + 2_000_000_000)
    return {"0.log": [cri(containerd_ts(clock.tick(5, 12000)), "stdout", "F", m) for m in lines]}


def datanode(rng):
    """HDFS DataNode (HDFS_2k); the WARN lines (exceptions while serving blocks) on stderr."""
    lines = corpus_lines("HDFS", 40, 44)
    clock = Clock(rng, ns(EPOCH) + 3_300_000_000)
    out = []
    for msg in lines:
        stream = "stderr" if " WARN " in msg else "stdout"
        out.append(cri(containerd_ts(clock.tick(10, 8000)), stream, "F", msg))
    return {"0.log": out}


# Airflow 2 task log, json_format=True, write_stdout=True (es_task_handler.py and
# es_json_formatter.py in apache/airflow's Elasticsearch provider).
DAG_ID = "example_bash_operator"
TASK_ID = "runme_0"
RUN_ID = "manual__2026-11-22T13:40:00+00:00"
EXEC_DATE = "2026_11_22T13_40_00_000000"  # cleaned logical date, as the handler renders it
TRY = "1"
LOG_ID = f"{DAG_ID}-{TASK_ID}-{RUN_ID}--1-{TRY}"  # {dag_id}-{task_id}-{run_id}-{map_index}-{try_number}
AIRFLOW_POD = "examplebashoperator-runme-0-abc123"


def airflow_record(nanos, filename, lineno, level, message):
    secs, frac = divmod(nanos, 10**9)
    asctime = dt.datetime.fromtimestamp(secs, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    asctime += f".{frac // 10**6:03d}+0000"
    # emit() sets offset = int(time.time() * 10**9), computed through a float.
    offset = int((nanos / 10**9) * 10**9)
    return json.dumps({
        "asctime": asctime, "filename": filename, "lineno": lineno, "levelname": level,
        "message": message, "dag_id": DAG_ID, "task_id": TASK_ID,
        "execution_date": EXEC_DATE, "try_number": TRY, "log_id": LOG_ID, "offset": offset,
    })


def base(rng):
    """The Airflow worker's `base` container: one JSON record per line, each with
    `log_id` and a strictly increasing `offset`; the spark-submit output comes
    from Spark_2k; one record (the driver's stderr) is longer than SPLIT_BYTES and
    is written as P, P, F; the last record is `end_of_log`."""
    spark = corpus_lines("Spark", 0, 48)
    clock = Clock(rng, ns(EPOCH) + 4_000_000_000)
    ti = f"<TaskInstance: {DAG_ID}.{TASK_ID} {RUN_ID} [queued]>"
    cmd = ("spark-submit --master yarn --deploy-mode client "
           "/opt/airflow/dags/jobs/sosp_wordcount.py hdfs://10.10.34.11:9000/pjhe/logs/2kSOSP.log")
    records = [
        ("taskinstance.py", 1165, "INFO", f"Dependencies all met for dep_context=non-requeueable deps ti={ti}"),
        ("taskinstance.py", 1165, "INFO", f"Dependencies all met for dep_context=requeueable deps ti={ti}"),
        ("taskinstance.py", 1362, "INFO", "Starting attempt 1 of 1"),
        ("taskinstance.py", 1383, "INFO", "Executing <Task(BashOperator): runme_0> on 2026-11-22 13:40:00+00:00"),
        ("standard_task_runner.py", 55, "INFO", "Started process 27 to run task"),
        ("subprocess.py", 63, "INFO", "Tmp dir root location: /tmp"),
        ("subprocess.py", 75, "INFO", f"Running command: ['/bin/bash', '-c', '{cmd}']"),
        ("subprocess.py", 86, "INFO", "Output:"),
    ]
    records += [("subprocess.py", 93, "INFO", line) for line in spark[:22]]
    long_msg = "spark-submit wrote to stderr:\n" + "\n".join(spark[22:])
    records.append(("subprocess.py", 93, "WARNING", long_msg))
    records += [
        ("subprocess.py", 97, "INFO", "Command exited with return code 0"),
        ("taskinstance.py", 1400, "INFO",
         f"Marking task as SUCCESS. dag_id={DAG_ID}, task_id={TASK_ID}, execution_date=20261122T134000, "
         "start_date={start}, end_date={now}"),
        ("local_task_job.py", 156, "INFO", "Task exited with return code 0"),
        ("taskinstance.py", 2318, "INFO", "0 downstream tasks scheduled from follow-on schedule check"),
        # close() emits logging.makeLogRecord({"msg": end_of_log_mark}): no file, line 0, no level.
        ("", 0, "Level None", "end_of_log"),
    ]
    out, offsets, start = [], [], None
    for filename, lineno, level, message in records:
        t = clock.tick(2, 1500)
        stamp = dt.datetime.fromtimestamp(t // 10**9, tz=dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
        start = start or stamp
        if "{now}" in message:
            message = message.replace("{start}", start).replace("{now}", stamp)
        line = airflow_record(t, filename, lineno, level, message)
        offsets.append(json.loads(line)["offset"])
        data = line.encode("utf-8")
        if len(data) <= SPLIT_BYTES:
            out.append(cri(containerd_ts(t), "stdout", "F", line))
            continue
        chunks = [data[i:i + SPLIT_BYTES] for i in range(0, len(data), SPLIT_BYTES)]
        assert len(chunks) == 3, f"long record must give P, P, F (got {len(chunks)} chunks)"
        for k, chunk in enumerate(chunks):
            tag = "F" if k == len(chunks) - 1 else "P"
            out.append(cri(containerd_ts(t + k * 2_417), "stdout", tag, chunk.decode("ascii")))
    assert offsets == sorted(set(offsets)) and offsets[0] >= 1
    return {"0.log": out}


PODS = [
    # namespace, pod, [(container, builder)]
    ("web", "apache-frontend-7d9f8b6c4-x2k9p", [("httpd", httpd)]),
    ("web", "bastion-sshd-0", [("sshd", sshd)]),
    ("data", "zookeeper-0", [("zookeeper", zookeeper)]),
    ("data", "hdfs-datanode-0", [("datanode", datanode)]),
    ("airflow", AIRFLOW_POD, [("base", base)]),
]


def build(root):
    rng = random.Random(SEED)
    pods_dir = os.path.join(root, "var", "log", "pods")
    links_dir = os.path.join(root, "var", "log", "containers")
    os.makedirs(links_dir)
    for ns_name, pod, containers in PODS:
        pod_dir = f"{ns_name}_{pod}_{uid_for(ns_name, pod)}"
        for container, builder in containers:
            cdir = os.path.join(pods_dir, pod_dir, container)
            os.makedirs(cdir)
            for fname, lines in builder(rng).items():
                with open(os.path.join(cdir, fname), "w", encoding="utf-8", newline="\n") as f:
                    f.write("".join(lines))
            link = f"{pod}_{ns_name}_{container}-{container_id(ns_name, pod, container)}.log"
            os.symlink(os.path.join("..", "pods", pod_dir, container, "0.log"), os.path.join(links_dir, link))


def snapshot(root):
    """{relative path: ('file', bytes) | ('link', target)} for everything under root/var."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "var")):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            elif os.path.isfile(p):
                with open(p, "rb") as f:
                    out[rel] = ("file", f.read())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed tree, write nothing")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        build(tmp)
        fresh = snapshot(tmp)
        size = sum(len(v) for kind, v in fresh.values() if kind == "file")
        if size > MAX_TREE_BYTES:
            raise SystemExit(f"tree is {size} bytes, over the {MAX_TREE_BYTES} byte budget")
        if args.check:
            current = snapshot(HERE)
            if current != fresh:
                diff = sorted(set(current) ^ set(fresh)) or sorted(k for k in fresh if current[k] != fresh[k])
                print("examples/node-logs/var differs from generate.py output:", *diff[:10], sep="\n  ")
                return 1
            print(f"examples/node-logs/var is up to date ({len(fresh)} entries, {size} bytes)")
            return 0
        shutil.rmtree(os.path.join(HERE, "var"), ignore_errors=True)
        shutil.copytree(os.path.join(tmp, "var"), os.path.join(HERE, "var"), symlinks=True)
    print(f"wrote {len(fresh)} entries, {size} bytes of log files under {os.path.join(HERE, 'var')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
