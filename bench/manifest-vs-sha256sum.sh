#!/usr/bin/env bash
# manifest-vs-sha256sum.sh [N] [RUNS] [SIDE]: `lifeos manifest create` over a
# dataset of N PNG images of SIDE x SIDE pixels (default 64: about 16 KB;
# 8 gives files of a few hundred bytes, where per-file costs dominate) with
# captions, cold (no stat cache) and warm
# (stat cache filled, nothing changed), against `sha256sum` over the same
# files, printing milliseconds per run and the ratios.
#
# sha256sum only hashes; the manifest also reads every image's header and
# every caption and writes the manifest atomically. Run by hand:
# `bash bench/manifest-vs-sha256sum.sh 10000 5`.
set -euo pipefail
n=${1:-10000}
runs=${2:-5}
side=${3:-64}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

CGO_ENABLED=0 go build -o "$work/lifeos" "$here"
(cd "$here" && go run ./bench/mkdataset "$work/dataset" "$n" "$side")
cd "$work"
find dataset -type f | sort > files.txt
echo "$(grep -c '\.png$' files.txt) images, $(grep -c '\.txt$' files.txt) captions, $(du -sh dataset | cut -f1)"

ms() { # ms SETUP CMD...: average wall milliseconds of RUNS runs of CMD, SETUP before each (untimed)
	local setup=$1 total=0 start end
	shift
	for _ in $(seq "$runs"); do
		eval "$setup"
		start=$(date +%s%N)
		"$@" > /dev/null
		end=$(date +%s%N)
		total=$((total + end - start))
	done
	echo $((total / runs / 1000))
}

# xargs reads the list with -a: every run must get all of it (a redirect
# would feed the first run only).
# One share of the list for each CPU: a fixed share (500 files) left a
# dataset of 380 files to one process, and "in parallel" was not.
share=$((($(wc -l < files.txt) + $(nproc) - 1) / $(nproc)))
sha_us=$(ms : xargs -a files.txt -P "$(nproc)" -n "$share" sha256sum)
sha1_us=$(ms : xargs -a files.txt sha256sum)
cold_us=$(ms 'rm -rf .lifeos manifest.json' ./lifeos manifest create dataset -o manifest.json)
# The stat cache trusts a file only once it is two seconds old (git's
# "racily clean" rule); the dataset is older than that by now.
./lifeos manifest create dataset -o manifest.json
warm_us=$(ms : ./lifeos manifest create dataset -o manifest.json)

# The manifest's digests are sha256sum's.
sed -n 's#^\([0-9a-f]*\)  dataset/10_bench/\(.*\.png\)$#\2 \1#p' <(xargs sha256sum < files.txt) | sort > want.txt
sed -n 's#.*"path":"10_bench/\([^"]*\)","sha256":"\([0-9a-f]*\)".*#\1 \2#p' manifest.json | sort > got.txt
[ "$(wc -l < want.txt)" -eq "$n" ] && cmp -s want.txt got.txt ||
	{ echo "the manifest's digests differ from sha256sum's" >&2; exit 1; }

awk -v s="$sha_us" -v s1="$sha1_us" -v c="$cold_us" -v w="$warm_us" -v cpus="$(nproc)" 'BEGIN {
	printf "average of the runs:\n"
	printf "  sha256sum, one process        %8.1f ms\n", s1 / 1000
	printf "  sha256sum, %d in parallel      %8.1f ms\n", cpus, s / 1000
	printf "  lifeos manifest create, cold  %8.1f ms  (%.2fx parallel sha256sum)\n", c / 1000, c / s
	printf "  lifeos manifest create, warm  %8.1f ms  (%.2fx parallel sha256sum)\n", w / 1000, w / s
}'
