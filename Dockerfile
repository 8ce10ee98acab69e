# syntax=docker/dockerfile:1
# tikv-operator: a static binary on distroless "static" (no shell, no libc), run as
# the non-root user 65532, fit for a read-only root filesystem. TiKV pods copy
# /tikv-operator from this image for their preStop hook. See docs/image.md.

FROM rust:1.95-bookworm AS build
ARG TARGET=x86_64-unknown-linux-gnu
WORKDIR /src
COPY . .
# crt-static links glibc in; getrandom then calls glibc's getrandom() directly (the
# default looks it up with dlsym, which a static binary cannot, and falls back to
# /dev/urandom). From the final image the binary needs only its CA bundle (kube's TLS
# stack loads the system roots even for plain HTTP), which distroless static has.
ENV RUSTFLAGS="-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"" \
    CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols CARGO_TERM_COLOR=never
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tikv-operator --bin tikv-operator --target "${TARGET}" \
    && install -D -m 0755 "target/${TARGET}/release/tikv-operator" /out/tikv-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tikv-operator /tikv-operator
USER 65532:65532
ENTRYPOINT ["/tikv-operator"]
CMD ["run"]
