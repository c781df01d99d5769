#!/usr/bin/env python3
"""alternate.py RUNS DIR CMD_A... -- CMD_B...: run two commands in DIR,
alternating (A B, then B A, ...), RUNS times each, and print each one's
median, quartiles and the ratio of the medians, in milliseconds.

On a host whose speed moves by a third from one hour to the next, only
runs interleaved this way compare two builds (or lifeos and make) fairly.
Both commands' output is discarded. Run by hand, e.g. with two builds of
lifeos on the workspace bench/make-vs-lifeos.sh makes:

    python3 bench/alternate.py 100 WORK ./lifeos-old run pipelines/bench.yaml -- ./lifeos-new run pipelines/bench.yaml
"""
import statistics
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 5 or "--" not in sys.argv[3:]:
        sys.exit(__doc__)
    runs, cwd = int(sys.argv[1]), sys.argv[2]
    rest = sys.argv[3:]
    cut = rest.index("--")
    cmds = {"A": rest[:cut], "B": rest[cut + 1:]}
    times = {"A": [], "B": []}
    for i in range(runs):
        for name in ("A", "B") if i % 2 == 0 else ("B", "A"):
            start = time.perf_counter()
            subprocess.run(cmds[name], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append((time.perf_counter() - start) * 1000)
    for name in ("A", "B"):
        q = statistics.quantiles(times[name], n=4)
        print(f"{name} median {statistics.median(times[name]):.2f} ms  (quartiles {q[0]:.2f}-{q[2]:.2f})  {' '.join(cmds[name])}")
    print(f"B/A {statistics.median(times['B']) / statistics.median(times['A']):.3f} (medians)")


if __name__ == "__main__":
    main()
