#!/usr/bin/env bash
# peers.sh [N] [RUNS]: the production-batch workload of make-vs-lifeos.sh
# (one command per input file, then a filter over all outputs that reads a
# threshold from a policy file) through GNU make, ninja and Snakemake when
# they are installed (apt-get install ninja-build snakemake), and lifeos.
# For each: the cold build (2 jobs), the no-op re-run (average of RUNS), a
# threshold edit (only the filter should run) and ten new inputs (only
# they and the filter should run), in seconds, side by side in one run.
# Run by hand: `bash bench/peers.sh 1000 5`.
set -euo pipefail
n=${1:-1000}
runs=${2:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
CGO_ENABLED=0 go build -o "$root/bin/lifeos" "$here"

# inputs DIR: N inputs of varied length.
inputs() {
	mkdir -p "$1/images"
	for i in $(seq -w 0 $((n - 1))); do
		head -c $((10#$i % 97 + 1)) /dev/zero | tr '\0' x > "$1/images/img$i.txt"
	done
	echo 50 > "$1/min.txt"
}

# Each tool: setup (untimed, in its folder), build, edit (the threshold),
# add (ten inputs, and what the tool needs to see them).
make_setup() {
	cat > Makefile <<'MK'
SRC := $(wildcard images/*.txt)
OUT := $(patsubst images/%.txt,out/%.size,$(SRC))
all: out/approved.txt
out/%.size: images/%.txt
	@mkdir -p out && wc -c < $< > $@
out/approved.txt: $(OUT) min.txt
	@cat out/*.size | awk -v min=$$(cat min.txt) '$$1 >= min' > $@
MK
}
make_build() { make -r -s -j2 > /dev/null; }

ninja_gen() {
	{
		echo 'rule size'
		echo '  command = wc -c < $in > $out'
		echo 'rule filter'
		echo '  command = cat out/*.size | awk -v min=$$(cat min.txt) '"'"'$$1 >= min'"'"' > $out'
		outs=""
		for f in images/*.txt; do
			b=$(basename "$f")
			echo "build out/${b%.txt}.size: size $f"
			outs="$outs out/${b%.txt}.size"
		done
		echo "build out/approved.txt: filter $outs | min.txt"
	} > build.ninja
}
ninja_setup() { mkdir -p out && ninja_gen; }
ninja_build() { ninja -j2 > /dev/null; }

snakemake_setup() {
	cat > Snakefile <<'SMK'
IDS, = glob_wildcards("images/{id}.txt")
rule all:
    input: "out/approved.txt"
rule size:
    input: "images/{id}.txt"
    output: "out/{id}.size"
    shell: "wc -c < {input} > {output}"
rule filter:
    input: expand("out/{id}.size", id=IDS), "min.txt"
    output: "out/approved.txt"
    shell: "cat out/*.size | awk -v min=$(cat min.txt) '$1 >= min' > {output}"
SMK
}
snakemake_build() { snakemake -j2 --quiet > /dev/null 2>&1; }

lifeos_setup() {
	mkdir -p pipelines policies
	cat > pipelines/p.yaml <<'YAML'
version: 1
steps:
  - id: measure
    uses: exec
    foreach: {glob: "images/*.txt"}
    with:
      run: [sh, -c, 'mkdir -p out && wc -c < "$1" > "$2"', sh, "${{ item }}", "out/${{ item[7:] }}.size"]
      inputs: ["${{ item }}"]
      outputs: ["out/${{ item[7:] }}.size"]
  - id: filter
    uses: exec
    needs: measure
    with:
      run: [sh, -c, 'cat out/*.size | awk -v min="$1" "\$1 >= min" > out/approved.txt', sh, "${{ policy.sharpness.min }}"]
      inputs: ["out/*.size"]
      outputs: [out/approved.txt]
YAML
	printf 'sharpness:\n  min: 50\n' > policies/thresholds.yaml
}
lifeos_build() { "$root/bin/lifeos" run --jobs 2 pipelines/p.yaml > /dev/null; }

secs() { # secs CMD...: wall seconds of one run
	local t0 t1
	t0=$(date +%s%N)
	"$@"
	t1=$(date +%s%N)
	awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e9 }'
}
avg() { # avg CMD...: mean wall seconds of RUNS runs
	local t0 t1
	t0=$(date +%s%N)
	for _ in $(seq "$runs"); do "$@"; done
	t1=$(date +%s%N)
	awk -v d=$((t1 - t0)) -v r="$runs" 'BEGIN { printf "%.3f", d / r / 1e9 }'
}
edit() { # edit TOOL: a new threshold where the tool reads it
	if [ "$1" = lifeos ]; then
		printf 'sharpness:\n  min: %s\n' "$2" > policies/thresholds.yaml
	else
		echo "$2" > min.txt
	fi
}
add() { # add TOOL: ten new inputs
	for j in $(seq 10); do echo "new input $j" > "images/new$j.txt"; done
	if [ "$1" = ninja ]; then ninja_gen; fi # ninja's generator, timed
}

echo "$n inputs, $(nproc) CPUs, $(date -u +%Y-%m-%d); seconds"
printf '%-12s %8s %8s %8s %8s\n' tool cold no-op edit +10
for tool in make ninja snakemake lifeos; do
	if [ "$tool" != lifeos ] && ! command -v "$tool" > /dev/null; then
		printf '%-12s (not installed)\n' "$tool"
		continue
	fi
	dir="$root/$tool"
	inputs "$dir"
	cd "$dir"
	"${tool}_setup"
	cold=$(secs "${tool}_build")
	sleep 2.1 # past lifeos's racy window, as a real re-run would be
	"${tool}_build"
	noop=$(avg "${tool}_build")
	edit "$tool" 51
	ed=$(secs "${tool}_build")
	add "$tool"
	plus=$(secs "${tool}_build")
	printf '%-12s %8s %8s %8s %8s\n' "$tool" "$cold" "$noop" "$ed" "$plus"
	cd "$root"
done
