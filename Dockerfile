# syntax=docker/dockerfile:1
#
# sessiongate container image.
#
#   docker build -t sessiongate .
#   docker run --rm -e JWT_SECRET=... -e SESSIONGATE_UPSTREAM=http://uploader:3000 \
#     -p 8080:8080 -p 127.0.0.1:9090:9090 -v sessiongate-data:/data \
#     --stop-timeout 45 sessiongate
#
# The gateway listens on 0.0.0.0:8080, the admin listener (/metrics, /healthz, /readyz) on
# 0.0.0.0:9090: publish the admin port on loopback or a private network only. Sessions live
# in the /data volume. Give `docker stop` more than limits.shutdown_grace_seconds (30 s by
# default) so in-flight requests can drain: --stop-timeout 45, or stop_grace_period in
# compose. See examples/deploy/ for a compose file, Prometheus rules and a dashboard.
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.

ARG RUST_VERSION=1

# ---- build -------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /build

# 1. Dependencies only. The manifests and the lockfile with stub sources: this layer (all
#    the compiled crates) is rebuilt only when Cargo.toml, Cargo.lock or the stand-in
#    crate's manifest change, not on every source edit. The stand-in crate is a workspace
#    member (a dev-dependency), so its manifest must be present; it is never compiled here.
COPY Cargo.toml Cargo.lock ./
COPY stand-in/Cargo.toml stand-in/Cargo.toml
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    mkdir -p src stand-in/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs stand-in/src/lib.rs \
    && cargo build --release --locked --bin sessiongate

# 2. The gateway itself. COPY keeps the files' modification times, which may be older than
#    the stub build's outputs: touch the crate roots so cargo rebuilds the crate.
COPY src src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin sessiongate \
    && install -D -m 0755 target/release/sessiongate /out/usr/local/bin/sessiongate \
    && install -d -m 0700 /out/data

# ---- runtime -----------------------------------------------------------------------------
# glibc and libgcc_s, nothing else: no shell, no package manager. Same Debian release
# (bookworm) as the builder, so the glibc the binary was linked against is there. (The
# :nonroot tag only changes the default user, which USER below sets to 10001 anyway.)
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime

LABEL org.opencontainers.image.title="sessiongate" \
      org.opencontainers.image.description="Session-aware auth gateway in front of the Share uploader" \
      org.opencontainers.image.licenses="MIT"

COPY --from=builder /out/usr/local/bin/sessiongate /usr/local/bin/sessiongate
COPY config/sessiongate.toml /etc/sessiongate/sessiongate.toml
# The store's directory, owned by the runtime user (a named volume mounted here starts
# with this ownership).
COPY --from=builder --chown=10001:10001 /out/data /data

# Over the shipped config: listen on every interface of the container, keep the store in
# the volume. Set SESSIONGATE_UPSTREAM (the uploader's URL) and JWT_SECRET when running.
ENV SESSIONGATE_LISTEN=0.0.0.0:8080 \
    SESSIONGATE_ADMIN_LISTEN=0.0.0.0:9090 \
    SESSIONGATE_DATA_DIR=/data

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080 9090

# GETs /healthz on the admin listener (SESSIONGATE_ADMIN_LISTEN, reached on loopback).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/sessiongate", "healthcheck", "--config", "/etc/sessiongate/sessiongate.toml"]

# SIGTERM drains in-flight requests for limits.shutdown_grace_seconds, then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sessiongate"]
CMD ["--config", "/etc/sessiongate/sessiongate.toml"]
