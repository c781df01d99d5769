#!/usr/bin/env bash
# Measures the built-in evaluations (detection, identity, skin realism,
# exposure) on the sample portraits and on the faces of the group photos
# that ship with the MIT-licensed npm package @vladmandic/face-api 1.7.15
# (demo/sample1-6.jpg, photos by its author), each altered ~45 ways, and
# prints the README's tables. Takes about ten minutes on 2 cores.
#
#   bash bench/evalmetrics.sh [-v]
set -euo pipefail
cd "$(dirname "$0")/.."
data=bench/.data/face-api
if [ ! -f "$data/package/demo/sample1.jpg" ]; then
	mkdir -p "$data"
	(cd "$data" && npm pack --silent @vladmandic/face-api@1.7.15 >/dev/null && tar xzf vladmandic-face-api-1.7.15.tgz package/demo package/LICENSE)
fi
go run ./bench/evalmetrics -groups "$data/package/demo" "$@"
