# syntax=docker/dockerfile:1
#
# nines' container image: a static binary on a small Alpine base, run as a
# non-root user.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg REVISION=$(git rev-parse HEAD) -t ghcr.io/ninesops/nines:dev .
#
# Alpine rather than distroless: the HEALTHCHECK needs an HTTP client
# (busybox wget), and distroless has neither a shell nor one. The binary is
# static (CGO_ENABLED=0) and carries its own time zone database
# (-tags timetzdata: the catalog's maintenance windows name zones), so it
# runs as well on distroless or scratch if you drop the HEALTHCHECK.
# Kubernetes ignores HEALTHCHECK and probes /-/healthy and /-/ready itself.

ARG GO_VERSION=1.26
ARG ALPINE_VERSION=3.22

# The builder runs on the build machine's platform and cross-compiles for
# the target's (docker buildx build --platform linux/amd64,linux/arm64).
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first: this layer is cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
ARG VERSION=dev
ARG REVISION=""
ARG BUILD_DATE=""
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -tags timetzdata \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION} -X github.com/prometheus/common/version.BuildDate=${BUILD_DATE}" \
      -o /out/nines ./cmd/nines

FROM alpine:${ALPINE_VERSION}
# A fixed numeric UID/GID, so that Kubernetes' runAsNonRoot can verify it
# and volumes can be prepared for it.
RUN addgroup -S -g 10001 nines && adduser -S -D -H -u 10001 -G nines -s /sbin/nologin nines \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/nines
# nines' state (the spool): mount a volume here. An empty named volume
# takes this directory's owner, so nines can write to it.
VOLUME /var/lib/nines
COPY --from=build /out/nines /usr/local/bin/nines
USER 10001:10001
EXPOSE 9095
# Liveness only (/-/healthy): readiness (/-/ready) also needs ClickHouse,
# and Docker would restart nothing on it anyway. Assumes the default
# --web.listen-address (:9095) and no TLS (--web.config.file).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9095/-/healthy"]
ENTRYPOINT ["nines"]
CMD ["serve"]
