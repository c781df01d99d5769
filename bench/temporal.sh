#!/usr/bin/env bash
# temporal.sh [STEPS] [IMAGES]: the overhead of run --engine temporal over
# the local engine, on this machine: a DAG of STEPS exec steps (layers of
# ten, each step needing one of the layer before; default 200) and a
# foreach over IMAGES files (default 1000), each run cold on both engines
# with the same shared bucket. Starts versitygw, Temporal's dev server (the
# latency-tuned flags of lifeos temporal dev) and one worker carrying out
# two steps at once; .ci/servers builds the first two into .tools/bin when
# they are not there (minutes, once). Beside the wall time of each run it
# prints the CPU time each process spent on it (the lifeos command with
# the commands it ran, the worker with its, each server): on a shared
# machine the wall time of a cold run varies by seconds, the CPU much
# less. Run by hand: `bash bench/temporal.sh 200 1000`.
# STEPS 0 skips the DAG. CHUNK=N sets the foreach's chunk size; FOREACH=F
# runs pipeline F instead of runner/testdata/bench.yaml (say
# bench/large-outputs.yaml: outputs of 2 MB, as images are).
set -euo pipefail
steps=${1:-200}
images=${2:-1000}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

bash "$here/.ci/servers"
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
# ready NAME PID LOG COMMAND...: waits until COMMAND succeeds, at most a
# minute, and says why not when the server exited or never answered.
ready() {
	local name=$1 pid=$2 log=$3 i
	shift 3
	for i in $(seq 300); do
		if "$@" > /dev/null 2>&1; then return; fi
		kill -0 "$pid" 2>/dev/null || { echo "$name exited:"; cat "$log"; exit 1; }
		sleep 0.2
	done
	echo "$name did not answer in a minute:"; cat "$log"; exit 1
}
ready versitygw "${pids[0]}" "$work/s3.log" curl -sf "http://127.0.0.1:$s3/health"
ready "Temporal's dev server" "${pids[1]}" "$work/temporal.log" sh -c "'$here/.tools/bin/temporal' operator cluster health --address 127.0.0.1:$tp | grep -q SERVING"

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
cp "${FOREACH:-$here/runner/testdata/bench.yaml}" "$work/each/pipelines/p.yaml"

ms() { # ms ENGINE BUCKET DIR: wall milliseconds of one cold run
	# Also the CPU, in clock ticks, of the command (with the processes it
	# waited for) in $work/$2.cpu, and of each server and the worker in
	# $work/$2.servers.
	local start end before i
	before=$(cpu "${pids[@]}")
	start=$(date +%s%N)
	(cd "$3" && rm -rf .lifeos out && LIFEOS_CACHE=s3://bench/$2 lifeos run -q --engine "$1" ${CHUNK:+$( [ "$1" = temporal ] && echo --chunk "$CHUNK")} pipelines/p.yaml > "$work/$2.log" 2>&1 &&
		awk '{print $16 + $17}' "/proc/$BASHPID/stat" > "$work/$2.cpu") ||
		{ cat "$work/$2.log"; exit 1; }
	end=$(date +%s%N)
	local -a b a
	read -r -a b <<< "$before"
	read -r -a a <<< "$(cpu "${pids[@]}")"
	for i in "${!a[@]}"; do printf '%d ' $((a[i] - b[i])); done > "$work/$2.servers"
	echo $(((end - start) / 1000000))
}
cpu() { # cpu PID...: each one's CPU in clock ticks, with its waited-for children
	local p
	for p in "$@"; do awk '{printf "%d ", $14 + $15 + $16 + $17}' "/proc/$p/stat" 2> /dev/null || printf '0 '; done
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
if [ "$steps" -gt 0 ]; then
	dag_local=$(ms local dag-local "$work/dag")
	run_temporal dag-temporal "$work/dag" dag_temporal
fi
each_local=$(ms local each-local "$work/each")
run_temporal each-temporal "$work/each" each_temporal

# CPU seconds of a run: the lifeos command, the worker, the S3 server and
# Temporal's, all on the same cores.
cpus() { # cpus NAME: "command s3 temporal worker" in seconds (the worker: the last started)
	local -a s
	read -r -a s < "$work/$1.servers"
	awk -v c="$(cat "$work/$1.cpu")" -v s3="${s[0]}" -v tp="${s[1]}" -v w="${s[${#s[@]} - 1]}" -v t="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.2f %.2f %.2f %.2f", c / t, s3 / t, tp / t, w / t }'
}
report() { # report COUNT UNIT LOCAL_MS TEMPORAL_MS LOCAL_NAME TEMPORAL_NAME
	local lc ls3 ltp tc tw ts3 ttp
	read -r lc ls3 ltp _ <<< "$(cpus "$5")"
	read -r tc ts3 ttp tw <<< "$(cpus "$6")"
	awk -v n="$1" -v u="$2" -v l="$3" -v t="$4" -v lc="$lc" -v ls3="$ls3" -v ltp="$ltp" -v tc="$tc" -v tw="$tw" -v ts3="$ts3" -v ttp="$ttp" 'BEGIN {
		printf "  local engine     %7.0f ms  CPU %.1f s: lifeos %.1f, S3 server %.1f, Temporal server %.1f\n", l, lc + ls3 + ltp, lc, ls3, ltp
		printf "  --engine temporal %6.0f ms  CPU %.1f s: submitter %.1f, worker %.1f, S3 server %.1f, Temporal server %.1f\n", t, tc + tw + ts3 + ttp, tc, tw, ts3, ttp
		printf "  %.2f ms per %s more (CPU %.2f ms more)\n", (t - l) / n, u, ((tc + tw + ts3 + ttp) - (lc + ls3 + ltp)) * 1000 / n
	}'
}
echo "$(nproc) CPUs; one worker carrying out 2 steps at once; cold runs, the shared bucket on loopback"
if [ "$steps" -gt 0 ]; then
	echo "DAG of $steps exec steps (layers of 10):"
	report "$steps" step "$dag_local" "$dag_temporal" dag-local dag-temporal
fi
echo "foreach over $images files (one step):"
report "$images" image "$each_local" "$each_temporal" each-local each-temporal
# The step after the foreach restores every element's outputs on the worker.
echo "  on the worker, the step after the foreach: $(grep -o 'filter | ok in [^:]*' "$work/worker.log" | tail -1)"
