# The loadprof image: the static binary and nothing else (no shell, no
# package manager), for `loadprof k8s` manifests and any container runtime.
#
#   docker build -t REGISTRY/loadprof:TAG .
#
# The build stage needs the Go module proxy (or GOFLAGS=-mod=vendor with a
# vendor directory) and nothing else from the network.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO_ENABLED=0: a static binary that runs FROM scratch.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/loadprof ./cmd/loadprof \
 && mkdir -p /out/tmp && chmod 1777 /out/tmp

FROM scratch
COPY --from=build /out/loadprof /loadprof
# A worker writes the payload files it is sent under /tmp; https targets
# need the CA bundle.
COPY --from=build /out/tmp /tmp
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# The manifests run as this non-root user (runAsNonRoot).
USER 65532:65532
ENTRYPOINT ["/loadprof"]
