# Multi-stage build of the one cairn binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY web web
RUN cargo build --release --locked --bin cairn

FROM debian:bookworm-slim
RUN useradd --system --home /cairn cairn && mkdir -p /cairn/data && chown cairn /cairn/data
WORKDIR /cairn
COPY --from=build /src/target/release/cairn /usr/local/bin/cairn
COPY config.yml ./config.yml
COPY rules rules
COPY discovery discovery
COPY web web
USER cairn
EXPOSE 9090
VOLUME /cairn/data
ENTRYPOINT ["/usr/local/bin/cairn"]
CMD ["--config.file=/cairn/config.yml", "--storage.tsdb.path=/cairn/data"]
