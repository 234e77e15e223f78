# syntax=docker/dockerfile:1
# sev's container image: a static-ish release binary on a small, non-root base.
# Build: docker build -t sev .   Run: docker run -p 8080:8080 sev serve (see docs/deploy.md)

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sev \
    && install -D target/release/sev /out/sev

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sev /usr/local/bin/sev
# Listen on all interfaces inside the container; state (SQLite, generated keys) in /data.
ENV SEV_LISTEN=0.0.0.0:8080 \
    SEV_DATA_DIR=/data \
    SEV_LOG_FORMAT=json
WORKDIR /data
# 65532 is distroless's "nonroot" user.
USER 65532:65532
EXPOSE 8080
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/sev"]
CMD ["serve"]
