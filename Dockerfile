# syntax=docker/dockerfile:1
# The supportgate image: the release binary on distroless (glibc, CA certificates, no shell),
# running as the distroless "nonroot" user (UID/GID 65532).
#   docker build -t supportgate:0.1.0 .

FROM rust:1-bookworm AS build
WORKDIR /src
# .dockerignore lets in only what the build reads: the manifests, src/, crates/ (the engine),
# benches/ (declared in Cargo.toml) and examples/ (the embedded default policy).
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin supportgate \
    && install -D -m 0755 target/release/supportgate /out/supportgate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/supportgate /supportgate
USER 65532:65532
# 8443: admission webhook (HTTPS); 8080: /healthz, /readyz, /metrics.
EXPOSE 8443 8080
ENTRYPOINT ["/supportgate"]
CMD ["run"]
