"""Writes schedules.json: the learning rate PyTorch's schedulers give at each of
100 steps, for tests/schedules.rs. Base lr 0.1 everywhere.

Run from the repository root (a venv with torch, e.g. /tmp/tv):
    /tmp/tv/bin/python nn-optim/tests/reference/make_schedules.py
"""
import json, math, os

import torch
from torch.optim import SGD
from torch.optim import lr_scheduler as S

STEPS = 100
BASE = 0.1


def trace(make, metrics=None):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = SGD([p], lr=BASE)
    sched = make(opt)
    out = []
    for t in range(STEPS):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[t])
    return out


# A loss that improves, stalls, improves a little, then stalls for good.
plateau_metrics = [1.0 / (1 + t) if t < 20 else (0.05 if t < 50 else (0.049 if t < 55 else 0.0489999)) for t in range(STEPS)]

cases = {
    "step_lr": trace(lambda o: S.StepLR(o, step_size=10, gamma=0.5)),
    "multi_step_lr": trace(lambda o: S.MultiStepLR(o, milestones=[15, 40, 70], gamma=0.3)),
    "exponential_lr": trace(lambda o: S.ExponentialLR(o, gamma=0.97)),
    "cosine_annealing": trace(lambda o: S.CosineAnnealingLR(o, T_max=100, eta_min=0.001)),
    "cosine_annealing_restarts_past_t_max": trace(lambda o: S.CosineAnnealingLR(o, T_max=30, eta_min=0.0)),
    "linear_lr": trace(lambda o: S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=20)),
    "warmup_then_cosine": trace(lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.01, end_factor=1.0, total_iters=10), S.CosineAnnealingLR(o, T_max=90, eta_min=0.0)], milestones=[10])),
    "warmup_then_step": trace(lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=5), S.StepLR(o, step_size=20, gamma=0.1)], milestones=[5])),
    "reduce_on_plateau": trace(lambda o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=5, threshold=1e-4, cooldown=2, min_lr=0.002), plateau_metrics),
}
out = {"generator": "PyTorch " + torch.__version__, "base_lr": BASE, "plateau_metrics": plateau_metrics, "cases": cases}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "schedules.json"), "w") as f:
    json.dump(out, f, indent=1)
print({k: v[-1] for k, v in cases.items()})
