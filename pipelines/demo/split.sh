#!/bin/sh
# split.sh OUT MIN: copies the images named in $APPROVED and $REJECTED
# (space-separated) into OUT/approved and OUT/rejected, writes OUT/report.md
# from $TABLE (one "file detail" pair per line), and prints the counts as a
# JSON object for the step's outputs.
set -eu
out=$1 min=$2
rm -rf "$out"
mkdir -p "$out/approved" "$out/rejected"
na=0 nr=0
for f in $APPROVED; do cp "$f" "$out/approved/"; na=$((na + 1)); done
for f in $REJECTED; do cp "$f" "$out/rejected/"; nr=$((nr + 1)); done
{
	echo "# Demo batch report"
	echo
	echo "$na approved, $nr rejected (policy demo.min_detail = $min bits per sample)."
	echo
	echo "| image | detail | verdict |"
	echo "|---|---:|---|"
	echo "$TABLE" | while read -r file detail; do
		[ -n "$file" ] || continue
		verdict=rejected
		if awk -v d="$detail" -v m="$min" 'BEGIN { exit !(d >= m) }'; then verdict=approved; fi
		echo "| $(basename "$file") | $detail | $verdict |"
	done
} > "$out/report.md"
printf '{"approved": %d, "rejected": %d, "report": "%s/report.md"}\n' "$na" "$nr" "$out"
