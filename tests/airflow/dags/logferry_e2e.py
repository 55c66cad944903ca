"""The DAG tests/airflow/run.py runs with `airflow tasks run --local`: one task per deployment mode,
all running `write_task_log`, which writes what a real task log mixes (tests/airflow/run.py checks
every line of it in the handler's view):

* records through Python logging (Airflow's task handler formats them as JSON with `log_id` and
  `offset`, `json_format = True`), numbered `#rec-NNN#`, some with non-ASCII text;
* `print()` lines (Airflow redirects them into the task log as records), `#print-NNN#`;
* raw text lines written straight to the task log's stream, as a subprocess or a C library
  sharing the file descriptor would (no JSON, no `log_id`), `#text-NNN#`;
* a record with a multi-line traceback (`log.exception`), `#trace-NNN#`;
* one record longer than the container runtime's 16 KiB line limit (split into CRI `P`
  records in kubelet layout), `#long-NNN#`.
"""

import logging
import sys
import time

import pendulum

from airflow import DAG
from airflow.operators.python import PythonOperator

LINES = 60


def _task_streams():
    """The streams the task log is written to (the Elasticsearch task handler's inner handler)."""
    streams = []
    for handler in logging.getLogger().handlers + logging.getLogger("airflow.task").handlers:
        inner = getattr(handler, "handler", None)
        stream = getattr(inner, "stream", None)
        if stream is not None and stream not in streams:
            streams.append(stream)
    return streams


def write_task_log():
    log = logging.getLogger("logferry.e2e")
    streams = _task_streams()
    if not streams:
        raise RuntimeError("no task log stream found on the root or airflow.task logger")
    for i in range(LINES):
        kind = i % 6
        if kind == 0:
            log.info("#rec-%03d# plain record", i)
        elif kind == 1:
            log.warning("#rec-%03d# Grüße aus Zürich, 東京の天気 ✓ — non-ASCII", i)
        elif kind == 2:
            print(f"#print-{i:03d}# printed to stdout")
            sys.stdout.flush()
        elif kind == 3:
            for stream in streams:
                stream.write(f"#text-{i:03d}# raw text line, not JSON\n")
                stream.flush()
        elif kind == 4:
            try:
                {}["missing"]
            except KeyError:
                log.exception("#trace-%03d# failed with a traceback", i)
        else:
            # i == 5: one record of ~20 KB, over the runtime's 16 KiB line limit.
            tag = "long" if i == 5 else "rec"
            log.info("#%s-%03d# %s", tag, i, "x" * (20_000 if i == 5 else 40))
        time.sleep(0.005)


with DAG(
    dag_id="logferry_e2e",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
) as dag:
    for mode in ("sidecar_files", "kubelet_api", "kubelet_no_api"):
        PythonOperator(task_id=mode, python_callable=write_task_log)
