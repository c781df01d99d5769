#!/bin/sh
# measure.sh IMAGE: prints a JSON object with the PNG's size and "detail",
# the bits per sample that lossless compression could not remove: a rough
# stand-in for fine texture (smooth, "plastic" images compress well). It
# reads the PNG header with od, so it runs anywhere with a POSIX shell.
set -eu
f=$1
set -- $(od -An -tu1 -j16 -N10 "$f")
w=$(( ($1 << 24) + ($2 << 16) + ($3 << 8) + $4 ))
h=$(( ($5 << 24) + ($6 << 16) + ($7 << 8) + $8 ))
case ${10} in
0) ch=1 ;; 2) ch=3 ;; 4) ch=2 ;; 6) ch=4 ;; *) ch=1 ;;
esac
bytes=$(wc -c < "$f")
awk -v f="$f" -v w="$w" -v h="$h" -v ch="$ch" -v b="$bytes" 'BEGIN {
	printf "{\"file\": \"%s\", \"width\": %d, \"height\": %d, \"bytes\": %d, \"detail\": %.3f}\n", f, w, h, b, 8 * b / (w * h * ch)
}'
