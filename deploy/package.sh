#!/bin/sh
# Builds the Letterbox .deb into OUTDIR (default: dist/) with nfpm, which is
# fetched from the Go module proxy and run, not made a module dependency.
#
#   deploy/package.sh [OUTDIR]
#
# Environment: GOARCH (default: the host's), VERSION (default
# 0.0.0~gitYYYYMMDD.<commit>), MAINTAINER.
set -eu
cd "$(dirname "$0")/.."

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
out=${1:-dist}
arch=${GOARCH:-$(go env GOARCH)}
if [ -z "${VERSION:-}" ]; then
	rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
	VERSION="0.0.0~git$(date -u +%Y%m%d).$rev"
fi

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
# Static, no cgo: the package depends on nothing.
CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -o "$build/letterbox" ./cmd/letterbox

sed "s|@LETTERBOX_BIN@|$build/letterbox|" deploy/nfpm.yaml >"$build/nfpm.yaml"

mkdir -p "$out"
ARCH="$arch" VERSION="$VERSION" MAINTAINER="${MAINTAINER:-Letterbox maintainers <letterbox@localhost>}" \
	go run "$NFPM" package --config "$build/nfpm.yaml" --packager deb --target "$out"
