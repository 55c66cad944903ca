#!/usr/bin/env python3
"""Manual check (not run by .ci/run): Airflow 3's Elasticsearch task handler reads what the
logferry sidecar shipped. Issue 17 asks that Airflow 3 records display correctly; this reads them
with the real handler of apache-airflow 3.1.8 and apache-airflow-providers-elasticsearch 6.10.0 in
a second venv:

    python3 -m venv target/tools/airflow3-venv
    target/tools/airflow3-venv/bin/pip install apache-airflow==3.1.8 apache-airflow-providers-elasticsearch==6.10.0
    cargo build -p logferry -p logferry-testkit --bins
    target/tools/airflow3-venv/bin/python tests/airflow/airflow3_read.py

No Airflow 3 worker runs here (an Airflow 3 worker needs the API server); the task log is written
in the shape Airflow 3's structlog writes it (one JSON object per line with `timestamp`, `level`,
`event`, `logger`), with an Airflow 2 style record (`message`, no `event`), a text line and a
traceback among them. logferry ships it with the chart's sidecar config (as tests/airflow/run.py
does), then `ElasticsearchTaskHandler._read()` (what the UI's log endpoint calls for a finished
try) must return every line, in order, with the text in `event`.
"""
import configparser
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
import run  # noqa: E402  (tests/airflow/run.py: helpers only, nothing runs on import)

ROOT = run.ROOT


def main():
    tmp = tempfile.mkdtemp(prefix="logferry-airflow3-")
    es, addr = run.start_listening(
        [os.path.join(run.BIN, "es-double"), "--listen", "127.0.0.1:0"], os.path.join(tmp, "es.log")
    )
    es_url = f"http://{addr}"
    try:
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(os.path.join(ROOT, "examples/airflow/airflow.cfg"))
        os.environ["AIRFLOW_HOME"] = os.path.join(tmp, "airflow-home")
        for key, value in cfg["elasticsearch"].items():
            os.environ[f"AIRFLOW__ELASTICSEARCH__{key.upper()}"] = value
        os.environ["AIRFLOW__ELASTICSEARCH__HOST"] = es_url
        os.environ["AIRFLOW__ELASTICSEARCH__ES_COMPAT_WITH"] = "8"

        dag_id, task_id, run_id = "etl", "load", "manual__2026-12-04T10:00:00.123456+00:00"
        rel = f"dag_id={dag_id}/run_id={run_id}/task_id={task_id}/attempt=1.log"
        watch = os.path.join(tmp, "watch")
        os.makedirs(os.path.dirname(os.path.join(watch, rel)))
        events = []
        with open(os.path.join(watch, rel), "w", encoding="utf-8") as f:
            for i in range(30):
                ts = f"2026-12-04T10:00:{i:02d}.123456Z"
                if i % 10 == 3:
                    text = f"#text-{i:03d}# raw text line"
                    f.write(text + "\n")
                elif i % 10 == 5:
                    text = f"#a2-{i:03d}# an Airflow 2 style record"
                    f.write(json.dumps({"asctime": ts, "levelname": "INFO", "message": text}) + "\n")
                elif i % 10 == 7:
                    text = f"#trace-{i:03d}# failed\nTraceback (most recent call last):\n  File \"x.py\", line 1\nKeyError: 'x'"
                    f.write(json.dumps({"timestamp": ts, "level": "error", "event": text, "logger": "task"}) + "\n")
                else:
                    text = f"#event-{i:03d}# Grüße ✓"
                    f.write(json.dumps({"timestamp": ts, "level": "info", "event": text, "logger": "task"}, ensure_ascii=False) + "\n")
                events.append(text)

        config = run.logferry_config("sidecar_files", tmp, es_url, watch, run.free_port())
        env = dict(os.environ)
        env.update(run.sidecar_env(task_id, run_id))
        out = subprocess.run(
            [os.path.join(run.BIN, "logferry"), "run", "--once", "--config", config],
            env=env, capture_output=True, text=True, timeout=300,
        )
        if out.returncode != 0:
            sys.exit(f"logferry failed:\n{out.stderr}")

        import airflow
        from airflow.providers.elasticsearch.log.es_task_handler import ElasticsearchTaskHandler
        from airflow.utils.state import TaskInstanceState

        es_cfg = cfg["elasticsearch"]
        handler = ElasticsearchTaskHandler(
            base_log_folder=os.path.join(tmp, "logs"),
            end_of_log_mark=es_cfg["end_of_log_mark"],
            write_stdout=False,
            json_fields=es_cfg["json_fields"],
            json_format=True,
            host_field=es_cfg["host_field"],
            offset_field=es_cfg["offset_field"],
            host=es_url,
            frontend="",
            index_patterns=es_cfg["index_patterns"],
        )

        class Ti:  # the attributes of a finished TaskInstance the handler reads
            pass

        ti = Ti()
        ti.dag_id, ti.task_id, ti.run_id, ti.map_index = dag_id, task_id, run_id, -1
        ti.try_number, ti.state = 1, TaskInstanceState.SUCCESS
        messages, metadata = handler._read(ti, 1, {})
        shown = [m.event for m in messages]
        print(f"apache-airflow {airflow.__version__}; the handler's view:")
        for m in messages:
            print(f"  | {m.timestamp} {getattr(m, 'level', '-')} {m.event!r}")
        body = shown[shown.index("::endgroup::") + 1 :]
        ok = body == events
        print(f"every line once, in order, text in `event`: {ok}; metadata: {metadata}")
        if not ok:
            sys.exit(1)
    finally:
        es.terminate()
        es.wait()


if __name__ == "__main__":
    main()
