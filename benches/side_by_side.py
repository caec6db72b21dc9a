"""nn against PyTorch on ../shared/bench/torch_anchor.py's workloads, in one session.

Usage (from the repository root, with a Python that has torch and numpy):
    cargo build --profile dist --example bench
    python3 benches/side_by_side.py [--rounds N] [--only W,W,...] [--anchor PATH] [--isa avx2]

Alternates the two frameworks for N rounds (default 3), so both see the same
machine conditions, and prints a Markdown table of medians and ratios
(ours / PyTorch's): epoch times over every epoch of every round, small-batch
step time and GEMM throughput over rounds, and peak RSS of one `mlp` run each
(`/usr/bin/time -f %M`), with the range of the per-round ratios beside the
medians' ratio. `--only` runs some of the workloads (names as below, plus
`gemm` and `rss`), for more rounds in the same time. Beside each workload, the share of the machine's
limit reached: `bench`'s GEMM FLOPs of an epoch (or step) divided by the
GEMM rate it measured in the same run, over the time taken. PyTorch's GEMM is `torch.mm` on `torch.rand(n, n)`,
timed exactly as `bench`'s `gemm` times ours. `--isa avx2` limits both
frameworks to AVX2 (each through its own switches, set in the environment),
to time on an AVX-512 machine the paths an AVX2 one takes.
"""
import argparse, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target", "dist", "examples", "bench")
WORKLOADS = ["mlp", "mlp_big", "cnn", "small_batch", "convnet", "resnet", "residual_tape", "lstm", "vit"]
SIZES = [256, 512, 1024, 2048]
# Targets, ours / PyTorch's: the performance issue's (mlp … resnet, GEMM, RSS),
# the composition issue's (residual_tape) and the sequence-layer issue's (lstm, vit).
TARGETS = {"mlp": 0.35, "mlp_big": 0.45, "cnn": 0.45, "small_batch": 0.03, "convnet": 0.6,
           "resnet": 0.6, "residual_tape": 0.3, "lstm": 0.7, "vit": 0.7, "gemm": 1.0, "rss": 0.25}

# What `--isa` sets: both frameworks' own switches for their kernels (PyTorch's
# element-wise code, its MKL products and its oneDNN convolutions).
ISA = {
    "avx2": {"NN_CPU_CAPABILITY": "avx2", "ATEN_CPU_CAPABILITY": "avx2",
             "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "avx512": {"NN_CPU_CAPABILITY": "avx512", "ATEN_CPU_CAPABILITY": "avx512",
               "MKL_ENABLE_INSTRUCTIONS": "AVX512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
}

TORCH_GEMM = r"""
import json, time, torch
out = {}
for n in %s:
    a, b = torch.rand(n, n), torch.rand(n, n)
    flop = 2.0 * n ** 3
    reps = min(max(int(2e10 / flop), 3), 200)
    for _ in range(reps):  # one untimed round, as bench's gemm
        torch.mm(a, b)
    t = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    out[str(n)] = flop * reps / (time.perf_counter() - t) / 1e9
print(json.dumps(out))
""" % SIZES


def lines(cmd, env=None):
    run = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return [json.loads(l) for l in run.stdout.splitlines() if l.startswith("{")]


def peak_rss_mb(cmd):
    run = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True, check=True)
    return int(run.stderr.strip().splitlines()[-1]) / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=",".join(WORKLOADS + ["gemm", "rss"]),
                    help="comma-separated workloads (and gemm, rss); default: all")
    ap.add_argument("--anchor", default=os.path.join(ROOT, "..", "shared", "bench", "torch_anchor.py"))
    ap.add_argument("--isa", choices=sorted(ISA), default=None,
                    help="limit both to one instruction set: NN_CPU_CAPABILITY for ours; "
                         "ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS, ONEDNN_MAX_CPU_ISA for PyTorch")
    args = ap.parse_args()
    if args.isa:
        os.environ.update(ISA[args.isa])
    only = args.only.split(",")
    unknown = [w for w in only if w not in WORKLOADS + ["gemm", "rss"]]
    if unknown:
        ap.error(f"unknown workload(s) {unknown}; choose from {WORKLOADS + ['gemm', 'rss']}")
    workloads = [w for w in WORKLOADS if w in only]
    py = sys.executable
    results = {"ours": {}, "torch": {}}

    def add(side, key, values):
        results[side].setdefault(key, []).extend(values)

    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
        ours_gemm = ["gemm"] if "gemm" in only else []
        for side, cmd, asked in [("torch", [py, args.anchor] + workloads, workloads),
                                 ("ours", [OURS] + workloads + ours_gemm, workloads + ours_gemm)]:
            if not asked:
                continue  # each program runs every workload when given none
            for rec in lines(cmd):
                w = rec["workload"]
                if "epoch_s" in rec:
                    add(side, w, rec["epoch_s"])
                    add(side, w + "_round", [statistics.median(rec["epoch_s"])])
                    add(side, w + "_acc", [rec["test_acc"]])
                elif w == "small_batch":
                    add(side, w, [rec["us_per_step"]])
                    add(side, w + "_round", [rec["us_per_step"]])
                elif w == "gemm":
                    for n, g in rec["gflops"].items():
                        add(side, "gemm" + n, [g])
                if "limit_fraction" in rec:
                    add(side, w + "_limit", [rec["limit_fraction"]])
        if "gemm" in only:
            for n, g in lines([py, "-c", TORCH_GEMM])[0].items():
                add("torch", "gemm" + n, [g])
    if "rss" in only:
        results["ours"]["rss"] = [peak_rss_mb([OURS, "mlp"])]
        results["torch"]["rss"] = [peak_rss_mb([py, args.anchor, "mlp"])]

    med = lambda side, key: statistics.median(results[side][key])
    rows = []
    spread = {}
    for w in workloads:
        unit = "µs/step" if w == "small_batch" else "s/epoch"
        o, t = med("ours", w), med("torch", w)
        # The share of the machine's limit (GEMM FLOPs at the GEMM rate
        # measured in the same run) each reaches; PyTorch's from its time.
        lim = med("ours", w + "_limit")
        rows.append((f"`{w}` ({unit})", o, t, o / t, f"≤ {TARGETS[w]}", o / t <= TARGETS[w],
                     f"{lim:.2f}", f"{lim * o / t:.2f}"))
        # Each round's ratio: how far one round's conditions move it.
        per_round = [a / b for a, b in zip(results["ours"][w + "_round"], results["torch"][w + "_round"])]
        spread[w] = (min(per_round), max(per_round))
    for n in SIZES if "gemm" in only else []:
        o, t = med("ours", f"gemm{n}"), med("torch", f"gemm{n}")
        rows.append((f"GEMM {n}³ (GFLOP/s)", o, t, o / t, f"≥ {TARGETS['gemm']}", o / t >= TARGETS["gemm"], "", ""))
    if "rss" in only:
        o, t = med("ours", "rss"), med("torch", "rss")
        rows.append(("peak RSS, `mlp` run (MB)", o, t, o / t, f"≤ {TARGETS['rss']}", o / t <= TARGETS["rss"], "", ""))
    for w in workloads:
        if w == "small_batch":
            continue
        o, t = med("ours", w + "_acc"), med("torch", w + "_acc")
        rows.append((f"`{w}` test accuracy", o, t, o - t, "≥ −0.003 (difference)", o - t >= -0.003, "", ""))

    version = subprocess.run([py, "-c", "import torch; print(torch.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    isa = f", both limited to {args.isa} (`--isa`)" if args.isa else ""
    print(f"Measured {stamp}, {args.rounds} alternating rounds, PyTorch {version}{isa}.\n")
    print("| measure | nn | PyTorch | ratio | target | met | nn, of limit | PyTorch, of limit |")
    print("| --- | ---: | ---: | ---: | --- | --- | ---: | ---: |")
    for name, o, t, ratio, target, ok, lim_o, lim_t in rows:
        fmt = (lambda v: f"{v:.4f}") if "accuracy" in name else (lambda v: f"{v:.3g}")
        print(f"| {name} | {fmt(o)} | {fmt(t)} | {ratio:.3g} | {target} | {'yes' if ok else '**no**'} | {lim_o} | {lim_t} |")
    if spread:
        print("\nRatio of each round (min–max): " + ", ".join(
            f"`{w}` {lo:.3g}–{hi:.3g}" for w, (lo, hi) in spread.items()) + ".")


if __name__ == "__main__":
    main()
