#!/usr/bin/env bash
# Builds shout's container image with podman: a static binary, with its
# version and revision stamped in, FROM scratch (nothing is pulled).
#
#   deploy/image.sh [IMAGE]     # default: localhost/shout:$VERSION and localhost/shout:dev
#
# VERSION (default: git describe), REVISION (default: the commit),
# SOURCE (default: the origin remote's URL, without any user name or
# token in it: the label ships with the image) and SOURCE_DATE_EPOCH (the
# image's creation time and its files' times, in seconds; default: the
# commit's time, so that two builds of one checkout are the same image)
# and GOARCH (the binary's and the image's architecture; default: go env
# GOARCH) can be set in the environment. It prints the image's name; with --source, only the SOURCE
# it would label the image with, and builds nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

git_ok=false
git rev-parse --is-inside-work-tree >/dev/null 2>&1 && git_ok=true
if $git_ok; then
  : "${VERSION:=$(git describe --tags --always --abbrev=12 --dirty)}"
  : "${REVISION:=$(git rev-parse HEAD)}"
  : "${SOURCE_DATE_EPOCH:=$(git log -1 --format=%ct)}"
  if [[ -z ${SOURCE:-} ]] && origin=$(git remote get-url origin 2>/dev/null); then
    # https://user:token@host/x → https://host/x; git@host:x → https://host/x
    SOURCE=$(sed -E -e 's#^([a-z][a-z0-9+.-]*://)[^@/]*@#\1#' -e 's#^[^@/:]+@([^:/]+):#https://\1/#' <<<"$origin")
  fi
fi
: "${VERSION:=dev}" "${REVISION:=unknown}" "${SOURCE:=unknown}" "${SOURCE_DATE_EPOCH:=0}"
if [[ ${1:-} == --source ]]; then
  echo "$SOURCE"
  exit 0
fi
tags=(-t "${1:-localhost/shout:$VERSION}")
(($#)) || tags+=(-t localhost/shout:dev)

# The binary goes in a folder of its own: the build context is only it.
ctx=$(mktemp -d "${TMPDIR:-/tmp}/image-shout.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
# Stamped with -X rather than by go build, which finds no revision in a
# git worktree or outside git: shout version and shout_build_info show them.
# Linux, whatever the host: podman on a Mac runs images in a Linux machine.
# The image says the binary's architecture, not the build machine's.
arch="${GOARCH:-$(go env GOARCH)}"
CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=$VERSION -X main.revision=$REVISION" -o "$ctx/shout" ./cmd/shout

"$root/deploy/podman.sh" build --quiet --layers=false --timestamp "$SOURCE_DATE_EPOCH" -f "$root/Containerfile" \
  --os linux --arch "$arch" \
  --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" --build-arg SOURCE="$SOURCE" \
  "${tags[@]}" "$ctx" >/dev/null
echo "${tags[1]}"
