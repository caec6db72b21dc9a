"""One epoch's test accuracy over several seeds, nn against PyTorch.

Usage (from the repository root, with a Python that has torch and numpy):
    cargo build --profile dist --example bench
    python3 benches/accuracy_seeds.py [--seeds N] [--anchor PATH] [workload ...]

A one-epoch accuracy of one seed moves by more than the ±0.003 the targets
allow (batch-norm models evaluated on one epoch's running statistics most of
all), so a single side-by-side run cannot tell a different model from chance.
This runs each workload (default: resnet convnet vit) with seeds 0 … N-1
(default 5) in both frameworks, alternating: ours with `bench --seed s`,
PyTorch's with torch_anchor.py unchanged except that both of its
`manual_seed(0)` calls (weights and data order) become `manual_seed(s)`.
Prints each seed's accuracies and the means and medians per framework.
"""
import argparse, json, os, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OURS = os.path.join(ROOT, "target", "dist", "examples", "bench")

# Runs torch_anchor.py with every manual_seed(x) shifted by SEED: the global
# seed (weights) and the shuffling generator's (data order).
SEEDED_ANCHOR = r"""
import os, runpy, sys, torch
shift = int(os.environ["SEED"])
global_seed = torch.manual_seed
torch.manual_seed = lambda s: global_seed(s + shift)
class Generator(torch.Generator):
    def manual_seed(self, s):
        return super().manual_seed(s + shift)
torch.Generator = Generator
anchor = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(anchor, run_name="__main__")
"""


def accuracies(cmd, env=None):
    run = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    lines = [json.loads(l) for l in run.stdout.splitlines() if l.startswith("{")]
    return {l["workload"]: l["test_acc"] for l in lines}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--anchor", default=os.path.join(ROOT, "..", "shared", "bench", "torch_anchor.py"))
    ap.add_argument("workloads", nargs="*", default=["resnet", "convnet", "vit"])
    args = ap.parse_args()
    acc = {"nn": {w: [] for w in args.workloads}, "PyTorch": {w: [] for w in args.workloads}}
    for seed in range(args.seeds):
        ours = accuracies([OURS, *args.workloads, "--seed", str(seed)])
        env = dict(os.environ, SEED=str(seed))
        theirs = accuracies([sys.executable, "-c", SEEDED_ANCHOR, args.anchor, *args.workloads], env)
        for w in args.workloads:
            acc["nn"][w].append(ours[w])
            acc["PyTorch"][w].append(theirs[w])
            print(f"seed {seed} {w}: nn {ours[w]:.4f}, PyTorch {theirs[w]:.4f}", file=sys.stderr, flush=True)
    print(f"| workload | framework | seeds 0–{args.seeds - 1} | mean | median |")
    print("| --- | --- | --- | ---: | ---: |")
    for w in args.workloads:
        for f in ("nn", "PyTorch"):
            xs = acc[f][w]
            print(f"| `{w}` | {f} | {', '.join(f'{x:.4f}' for x in xs)} | "
                  f"{statistics.mean(xs):.4f} | {statistics.median(xs):.4f} |")


if __name__ == "__main__":
    main()
