# syntax=docker/dockerfile:1
#
# logferry container image: a static (musl) release build of the `logferry` binary from
# crates/logferry -- the same binary crate and package the tests build (`cargo build -p logferry`),
# here with --release --locked -- on distroless/static (no shell, no libc, CA certificates included).
#
#   docker build -t ghcr.io/logferry/logferry:0.1.0 --build-arg VERSION=0.1.0 .
#
# This image cannot be built on the project's development machines (no container engine); CI lints
# this file with hadolint (tests/chart/run.sh).
#
# USER: the image defaults to distroless' unprivileged `nonroot` user (65532), which is what the
# sidecar mode uses (it reads a world-readable shared emptyDir). The Helm chart's DaemonSet overrides
# it with `securityContext.runAsUser: 0` and drops every capability: container log files under
# /var/log/pods are root-owned (0640), and root reads them as their owner without any capability and
# writes its root-owned checkpoint directory. See charts/logferry/README.md ("Security").

# Base images are pinned by digest (a moving tag can change under a rebuild; the chart tests fail on
# a FROM without @sha256). UNVERIFIED: these digests could not be checked against the registries
# from the development machines (no registry access); they are the ones public Dockerfiles pin for
# these tags (rust:1-bookworm: Rust 1.98.1; distroless static-debian12:nonroot as of 2026-08-26).
# Before a release, on a machine that reaches the registries, confirm or update them: the digest
# to pin is the multi-platform index's (what the tag resolves to), which either of
#   crane digest rust:1-bookworm
#   crane digest gcr.io/distroless/static-debian12:nonroot
#   docker buildx imagetools inspect rust:1-bookworm --format '{{json .Manifest.Digest}}'
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot --format '{{json .Manifest.Digest}}'
# prints; a pinned digest that no longer exists fails `docker build` at once (never silently).
FROM rust:1-bookworm@sha256:93ce27a88655056a51dbdd8f5f2d7ddc071c7b0070fb288a37b5a285fc83971e AS builder
ARG TARGET=x86_64-unknown-linux-musl
# musl-tools provides musl-gcc, which the cc crate uses for C dependencies (ring) on the musl target.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add "${TARGET}"
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target "${TARGET}" -p logferry \
    && install -D -m 0755 "target/${TARGET}/release/logferry" /out/logferry

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="logferry" \
      org.opencontainers.image.description="Kubernetes node log collector: every container log line exactly once in Elasticsearch" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/logferry/logferry" \
      org.opencontainers.image.url="https://github.com/logferry/logferry" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/logferry /logferry
# Unprivileged by default; the chart's DaemonSet runs it as root with all capabilities dropped (see above).
USER 65532:65532
# Admin HTTP server: /metrics, /healthz, /readyz, /quitquitquit.
EXPOSE 2020
ENTRYPOINT ["/logferry"]
CMD ["run", "--config", "/etc/logferry/logferry.yaml"]
