#!/usr/bin/env bash
# temporal.sh [STEPS] [IMAGES]: the overhead of run --engine temporal over
# the local engine, on this machine: a DAG of STEPS exec steps (layers of
# ten, each step needing one of the layer before; default 200) and a
# foreach over IMAGES files (default 1000), each run cold on both engines
# with the same shared bucket. Starts versitygw, Temporal's dev server (the
# latency-tuned flags of lifeos temporal dev) and one worker carrying out
# two steps at once. Needs .tools/bin/versitygw and .tools/bin/temporal
# (.ci/run builds them). Run by hand: `bash bench/temporal.sh 200 1000`.
set -euo pipefail
steps=${1:-200}
images=${2:-1000}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -o "$work/bin/lifeos" "$here"
CGO_ENABLED=0 go build -o "$work/bin/lifeos-temporal" "$here/cmd/lifeos-temporal"
export PATH="$work/bin:$PATH"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
s3=$(port) tp=$(port)
mkdir -p "$work/s3/bench"
ROOT_ACCESS_KEY=bench ROOT_SECRET_KEY=bench-secret "$here/.tools/bin/versitygw" --port "127.0.0.1:$s3" --health /health --quiet --keep-alive posix "$work/s3" > "$work/s3.log" 2>&1 &
pids+=($!)
"$here/.tools/bin/temporal" server start-dev --headless --ip 127.0.0.1 --port "$tp" --log-level warn \
	--dynamic-config-value matching.numTaskqueueReadPartitions=1 --dynamic-config-value matching.numTaskqueueWritePartitions=1 \
	--dynamic-config-value history.transferProcessorMaxPollRPS=1000 --dynamic-config-value history.timerProcessorMaxPollRPS=1000 \
	--dynamic-config-value 'history.timerProcessorMaxTimeShift="100ms"' > "$work/temporal.log" 2>&1 &
pids+=($!)
export AWS_ENDPOINT_URL=http://127.0.0.1:$s3 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret
export LIFEOS_TEMPORAL_ADDRESS=127.0.0.1:$tp LIFEOS_WORKER_DIR=$work/worker
until curl -sf "http://127.0.0.1:$s3/health" > /dev/null; do sleep 0.1; done
until "$here/.tools/bin/temporal" operator cluster health --address "127.0.0.1:$tp" 2>/dev/null | grep -q SERVING; do sleep 0.2; done

# The workspaces: a DAG of exec steps, and a foreach over files.
mkdir -p "$work/dag/pipelines" "$work/each/pipelines" "$work/each/images"
{
	echo "version: 1"
	echo "steps:"
	for i in $(seq 0 $((steps - 1))); do
		echo "  - id: s$i"
		echo "    uses: exec"
		if [ "$i" -ge 10 ]; then echo "    needs: s$((i - 10))"; fi
		echo "    with: {run: [sh, -c, 'mkdir -p out && echo $i > out/s$i.txt'], inputs: [pipelines/p.yaml], outputs: [out/s$i.txt]}"
	done
} > "$work/dag/pipelines/p.yaml"
for i in $(seq -w 0 $((images - 1))); do echo "image $i" > "$work/each/images/img$i.txt"; done
cp "$here/runner/testdata/bench.yaml" "$work/each/pipelines/p.yaml"

ms() { # ms ENGINE BUCKET DIR: wall milliseconds of one cold run
	local start end
	start=$(date +%s%N)
	(cd "$3" && rm -rf .lifeos out && LIFEOS_CACHE=s3://bench/$2 lifeos run -q --engine "$1" ${CHUNK:+$( [ "$1" = temporal ] && echo --chunk "$CHUNK")} pipelines/p.yaml > "$work/$2.log" 2>&1) ||
		{ cat "$work/$2.log"; exit 1; }
	end=$(date +%s%N)
	echo $(((end - start) / 1000000))
}
# Each measurement has a bucket prefix of its own, so each is cold; the
# worker must use the run's, so it is started anew for each.
worker=""
run_temporal() { # run_temporal BUCKET DIR VAR: sets VAR to the milliseconds
	if [ -n "$worker" ]; then kill "$worker"; wait "$worker" 2>/dev/null || true; fi
	LIFEOS_CACHE=s3://bench/$1 lifeos worker --queue default --steps 2 >> "$work/worker.log" 2>&1 &
	worker=$!
	pids+=("$worker")
	printf -v "$3" '%s' "$(ms temporal "$1" "$2")"
}
dag_local=$(ms local dag-local "$work/dag")
run_temporal dag-temporal "$work/dag" dag_temporal
each_local=$(ms local each-local "$work/each")
run_temporal each-temporal "$work/each" each_temporal

awk -v n="$steps" -v m="$images" -v dl="$dag_local" -v dt="$dag_temporal" -v el="$each_local" -v et="$each_temporal" -v cpus="$(nproc)" 'BEGIN {
	printf "%d CPUs; one worker carrying out 2 steps at once; cold runs, the shared bucket on loopback\n", cpus
	printf "DAG of %d exec steps (layers of 10):\n", n
	printf "  local engine     %7.0f ms\n", dl
	printf "  --engine temporal %6.0f ms  (%.1f ms per step more)\n", dt, (dt - dl) / n
	printf "foreach over %d files (one step):\n", m
	printf "  local engine     %7.0f ms\n", el
	printf "  --engine temporal %6.0f ms  (%.2f ms per image more)\n", et, (et - el) / m
}'
