# syntax=docker/dockerfile:1
# wagate: build with the stable Rust toolchain, run on a slim Debian as a non-root user.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p wagate-server \
    && cp target/release/wagate /usr/local/bin/wagate

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin wagate \
    && mkdir -p /data && chown wagate:wagate /data
COPY --from=build /usr/local/bin/wagate /usr/local/bin/wagate
USER wagate
WORKDIR /data
ENV WAGATE_LISTEN=0.0.0.0:8080 \
    WAGATE_DATA_DIR=/data \
    WAGATE_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["wagate", "healthcheck"]
# SIGTERM (docker stop) finishes requests, sends and webhook attempts in flight, then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["wagate"]
CMD ["serve"]
