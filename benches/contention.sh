#!/usr/bin/env bash
# Epoch time with one core busy against the quiet time, for `bench` binaries
# side by side (the README's Threads paragraph).
#
#   benches/contention.sh ROUNDS WORKLOAD BIN[:VAR=value,...]...
#   e.g. benches/contention.sh 8 mlp target/dist/examples/bench \
#            target/dist/examples/bench:NN_NUM_THREADS=1
#
# Each round runs every binary quiet, then beside a busy loop pinned to CPU 1.
# A run's time is the median of its epochs; a run during which the host stole
# more than $MAX_STEAL percent (default 3) of the CPU time is repeated (up to
# five tries), since a virtual machine's neighbours would otherwise decide the
# result. Prints each binary's runs, medians and busy/quiet ratio. Needs
# MNIST_DIR (or data/mnist), Linux and `taskset`; run nothing else meanwhile.
set -euo pipefail
rounds=$1 workload=$2
shift 2
max_steal=${MAX_STEAL:-3}
declare -A quiet busy

# Steal and total CPU time so far, from /proc/stat.
cpu_times() { awk '/^cpu /{t = 0; for (i = 2; i <= NF; i++) t += $i; print $9, t}' /proc/stat; }

# The median of the numbers given.
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# One run of binary $1 with environment $2: prints the median epoch time.
run_once() {
    local try s0 t0 s1 t1 steal epoch
    for try in 1 2 3 4 5; do
        read -r s0 t0 < <(cpu_times)
        epoch=$(median $(env $2 "$1" "$workload" 2>/dev/null | grep -o '"epoch_s": \[[^]]*\]' |
            grep -o '[0-9.]*'))
        read -r s1 t1 < <(cpu_times)
        steal=$((100 * (s1 - s0) / (t1 - t0 + 1)))
        if [ "$steal" -le "$max_steal" ]; then break; fi
        echo "host stole $steal% during a run ($epoch s): repeating it" >&2
        sleep 5
    done
    echo "$epoch"
}

busy_loop=""
trap '[ -n "$busy_loop" ] && kill "$busy_loop" 2>/dev/null' EXIT
for _ in $(seq "$rounds"); do
    for spec in "$@"; do
        bin=${spec%%:*} envs=""
        [[ $spec == *:* ]] && envs=$(tr ',' ' ' <<<"${spec#*:}")
        quiet[$spec]="${quiet[$spec]:-} $(run_once "$bin" "$envs")"
        taskset -c 1 sh -c 'while :; do :; done' &
        busy_loop=$!
        sleep 0.2
        busy[$spec]="${busy[$spec]:-} $(run_once "$bin" "$envs")"
        kill "$busy_loop"
        wait "$busy_loop" 2>/dev/null || true
        busy_loop=""
    done
done
for spec in "$@"; do
    q=$(median ${quiet[$spec]}) b=$(median ${busy[$spec]})
    echo "$spec: quiet${quiet[$spec]} | busy${busy[$spec]} | medians $q $b | ratio $(awk -v b="$b" -v q="$q" 'BEGIN {printf "%.3f", b / q}')"
done
