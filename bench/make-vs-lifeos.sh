#!/usr/bin/env bash
# make-vs-lifeos.sh [N] [RUNS]: the same no-op workload through GNU make and
# through lifeos, printing milliseconds per run and the ratio.
#
# The workload: N input files, one output per file (a pattern rule in make, a
# foreach exec step in lifeos), then a filter over all outputs that reads a
# threshold. Both are run once to build everything (timed: the cold build),
# then RUNS times with nothing to do. Run by hand: `bash bench/make-vs-lifeos.sh 1000 30`.
set -euo pipefail
n=${1:-1000}
runs=${2:-30}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -o "$work/lifeos" "$here" # static, as a release binary would be
cd "$work"
mkdir -p images pipelines
for i in $(seq -w 0 $((n - 1))); do
	head -c $((10#$i % 97 + 1)) /dev/zero | tr '\0' x > "images/img$i.txt"
done

cat > Makefile <<'MK'
SRC := $(wildcard images/*.txt)
OUT := $(patsubst images/%.txt,mout/%.txt.size,$(SRC))
MIN := 0.2
all: mout/approved.txt
mout/%.txt.size: images/%.txt
	@mkdir -p mout && wc -c < $< > $@
mout/approved.txt: $(OUT)
	@cat mout/*.size | awk -v min=$(MIN) '$$1 >= min' > $@
MK

cp "$here/runner/testdata/bench.yaml" pipelines/bench.yaml

ms() { # ms CMD...: average wall milliseconds of RUNS runs
	local start end
	start=$(date +%s%N)
	for _ in $(seq "$runs"); do "$@" > /dev/null; done
	end=$(date +%s%N)
	echo $(((end - start) / runs / 1000))
}

now_us() { echo $(($(date +%s%N) / 1000)); }
# Cold: everything built, two jobs each (lifeos's default on 2 CPUs).
t0=$(now_us)
make -r -s -j2 > /dev/null
t1=$(now_us)
"$work/lifeos" run --jobs 2 pipelines/bench.yaml > /dev/null
t2=$(now_us)
make_cold=$((t1 - t0))
lifeos_cold=$((t2 - t1))
# lifeos trusts a file's stat only once it is older than two seconds (git's
# "racily clean" rule); until then it re-hashes. Measure the steady state.
sleep 2.1
"$work/lifeos" run pipelines/bench.yaml > /dev/null

make_us=$(ms make -r -s)
lifeos_us=$(ms "$work/lifeos" run pipelines/bench.yaml)
startup_us=$(ms "$work/lifeos" version)

# A threshold edit: only the filter runs again. Alternate two values.
edit=$("$work/lifeos" run --set sharpness.min=50 pipelines/bench.yaml | sed -n 's/^  \(ok\|cached\|up to date\) *\([^ ]*\).*/\2=\1/p' | tr '\n' ' ')
t0=$(date +%s%N)
for i in $(seq "$runs"); do "$work/lifeos" run --set sharpness.min=$((50 + i % 2)) pipelines/bench.yaml > /dev/null; done
edit_us=$((($(date +%s%N) - t0) / runs / 1000))

# Ten new images, five times: each tool builds them and the filter again.
add_make=0 add_lifeos=0
for k in 1 2 3 4 5; do
	for j in $(seq 10); do echo "new $k $j" > "images/new$k-$j.txt"; done
	t0=$(date +%s%N); make -r -s -j2 > /dev/null; t1=$(date +%s%N)
	"$work/lifeos" run pipelines/bench.yaml > /dev/null; t2=$(date +%s%N)
	add_make=$((add_make + (t1 - t0) / 1000)) add_lifeos=$((add_lifeos + (t2 - t1) / 1000))
done

awk -v n="$n" -v mc="$make_cold" -v lc="$lifeos_cold" 'BEGIN {
	printf "cold build of %d files, 2 jobs:\n", n
	printf "  make -r -j2       %7.0f ms\n", mc / 1000
	printf "  lifeos run        %7.0f ms  (%.2f ms per element beyond make)\n", lc / 1000, (lc - mc) / 1000 / n
}'
awk -v n="$n" -v m="$make_us" -v l="$lifeos_us" -v s="$startup_us" -v e="$edit" 'BEGIN {
	printf "no-op over %d files, average of the runs:\n", n
	printf "  make -r          %7.2f ms\n", m / 1000
	printf "  lifeos run       %7.2f ms  (of which process start-up %.2f ms)\n", l / 1000, s / 1000
	printf "  ratio lifeos/make %6.2fx\n", l / m
	printf "threshold edit re-ran: %s\n", e
}'
awk -v e="$edit_us" -v l="$lifeos_us" -v am="$add_make" -v al="$add_lifeos" 'BEGIN {
	printf "  lifeos edit       %7.2f ms  (%.2fx its no-op)\n", e / 1000, e / l
	printf "+10 images, average of 5:\n"
	printf "  make -r -j2       %7.2f ms\n", am / 5000
	printf "  lifeos run        %7.2f ms  (%.2fx make)\n", al / 5000, al / am
}'
