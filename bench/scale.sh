#!/usr/bin/env bash
# scale.sh [N]: one batch of N tiny PNG images (8x8 noise, default
# 100000) through `images` -> `score: sharpness` -> `filter`: cold run,
# first re-run (outputs too fresh to trust by stat, so hashed), no-op
# re-runs, and two threshold edits. Prints each run's wall time and peak
# RSS, the filter's own time, the largest run record, and the cache's
# file count and size. Needs GNU time (/usr/bin/time). Run by hand:
# `bash bench/scale.sh 100000` (about 2 minutes and 1 GB of disk).
set -euo pipefail
n=${1:-100000}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -o "$work/lifeos" "$here"
(cd "$here" && go run ./bench/mkdataset "$work/ds" "$n" 8)
find "$work/ds" -name '*.txt' -delete
cd "$work"
mkdir -p pipelines policies
printf 'sharpness:\n  min: 0.5\n' > policies/thresholds.yaml
cat > pipelines/p.yaml <<'YAML'
version: 1
steps:
  - id: shots
    uses: images
    with: {from: ds/10_bench}
  - id: sharp
    uses: score
    needs: shots
    with: {scorer: sharpness}
  - id: keep
    uses: filter
    needs: [sharp]
    with:
      approve: item.sharp.sharpness >= policy.sharpness.min
      output: out
YAML

measure() { # measure LABEL ARGS...: wall seconds and peak RSS of one run
	local label=$1
	shift
	/usr/bin/time -f "%e %M" -o time.txt ./lifeos run "$@" pipelines/p.yaml > out.txt
	read -r secs kb < time.txt
	local filter
	filter=$(sed -n 's/^  ok *keep .*  \([0-9.]*m\?s\).*/\1/p' out.txt)
	printf '  %-22s %7.2f s  %6d MB RSS  filter: %s\n' "$label" "$secs" $((kb / 1024)) "${filter:-not run}"
}

echo "$n images, $(nproc) CPUs, $(date -u +%Y-%m-%d)"
measure "cold"
sleep 2.5 # files older than the stat cache's racy window
measure "first re-run"
measure "no-op" ; measure "no-op" ; measure "no-op"
measure "threshold edit" --set sharpness.min=0.98
measure "threshold edit" --set sharpness.min=0.985
echo "  largest run record: $(find .lifeos/runs -name run.json -printf '%s\n' | sort -n | tail -1) bytes"
echo "  cache: $(find .lifeos/cache -type f | wc -l) files, $(du -sh .lifeos/cache | cut -f1) on disk ($(du -sh --apparent-size .lifeos/cache | cut -f1) apparent)"
