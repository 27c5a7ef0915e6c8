#!/usr/bin/env bash
# Vendors uPlot's browser build from the npm registry into this directory
# and prints the checksums to record in README.md.
#   bench/uplot/update.sh 1.6.32
set -euo pipefail
version=${1:?usage: update.sh VERSION}
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$version" >/dev/null && tar xzf "uplot-$version.tgz")
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" "$tmp/package/LICENSE" .
echo "tarball https://registry.npmjs.org/uplot/-/uplot-$version.tgz"
(cd "$tmp" && sha256sum "uplot-$version.tgz")
sha256sum uPlot.iife.min.js uPlot.min.css
