#!/usr/bin/env bash
# buf breaking of proto/ against the contracts at a git ref.
#
# buf's own `.git#ref=…` input cannot be used: the google/* and grpc/* protos
# live in build/third_party (copied from npm packages, not committed), so the
# ref's tree alone does not compile. We unpack the ref into a scratch
# workspace, give it today's third-party protos, and compare the proto module.
set -euo pipefail
ref=${1:?usage: breaking.sh <git ref>}
repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
git -C "$repo" archive "$ref" | tar -x -C "$scratch"
mkdir -p "$scratch/build"
cp -r "$repo/build/third_party" "$scratch/build/"
cd "$repo"
buf breaking proto --against "$scratch/proto"
