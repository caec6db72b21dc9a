"""Identifies the hyperparameters behind each trajectory of
../shared/testdata/torch/optim.json (the file names only some of them): every
candidate setting is replayed with PyTorch's own optimizer, and the one that
reproduces all steps to 1e-12 is printed. tests/torch_trajectories.rs uses
these settings.

Run from the repository root:
    /tmp/tv/bin/python nn-optim/tests/reference/identify_optim_settings.py
(/tmp/tv: a venv with torch, as the README's performance section describes.)

Printed with PyTorch 2.15:
  sgd_lr0.1                        lr 0.1
  sgd_momentum0.9                  lr 0.1, momentum 0.9
  sgd_momentum0.9_dampening0.1     lr 0.1, momentum 0.9, dampening 0.1
  sgd_nesterov                     lr 0.1, momentum 0.9, nesterov
  sgd_weight_decay0.01             lr 0.1, momentum 0.9, weight_decay 0.01
  adam_default                     PyTorch's defaults (lr 1e-3, betas (0.9, 0.999), eps 1e-8)
  adam_lr0.1_betas0.8_0.99_eps1e-6 as named
  adam_weight_decay0.1             lr 0.01, weight_decay 0.1
  adam_amsgrad                     lr 0.01, amsgrad
  adamw_wd0.01                     lr 0.01, weight_decay 0.01
  rmsprop_alpha0.99                lr 0.01, alpha 0.99
  rmsprop_momentum_centered        lr 0.01, momentum 0.9, centered
  adagrad                          lr 0.1
"""
import json, torch
import os
d = json.load(open(os.path.join(os.path.dirname(__file__), '../../../../shared/testdata/torch/optim.json')))
cands = {
 'sgd_lr0.1': [lambda p: torch.optim.SGD([p], lr=0.1)],
 'sgd_momentum0.9': [lambda p, lr=lr: torch.optim.SGD([p], lr=lr, momentum=0.9) for lr in (0.1, 0.01, 0.05)],
 'sgd_momentum0.9_dampening0.1': [lambda p, lr=lr: torch.optim.SGD([p], lr=lr, momentum=0.9, dampening=0.1) for lr in (0.1, 0.01, 0.05)],
 'sgd_nesterov': [lambda p, lr=lr, m=m: torch.optim.SGD([p], lr=lr, momentum=m, nesterov=True) for lr in (0.1, 0.01, 0.05) for m in (0.9, 0.5, 0.99)],
 'sgd_weight_decay0.01': [lambda p, lr=lr, m=m, n=n: torch.optim.SGD([p], lr=lr, weight_decay=0.01, momentum=m, nesterov=n) for lr in (0.1, 0.01, 0.05, 0.001) for m in (0, 0.9, 0.5) for n in (False, True) if not (n and m == 0)],
 'adam_default': [lambda p: torch.optim.Adam([p])],
 'adam_lr0.1_betas0.8_0.99_eps1e-6': [lambda p: torch.optim.Adam([p], lr=0.1, betas=(0.8, 0.99), eps=1e-6)],
 'adam_weight_decay0.1': [lambda p, lr=lr: torch.optim.Adam([p], lr=lr, weight_decay=0.1) for lr in (1e-3, 0.01, 0.1)],
 'adam_amsgrad': [lambda p, lr=lr: torch.optim.Adam([p], lr=lr, amsgrad=True) for lr in (1e-3, 0.01, 0.1)],
 'adamw_wd0.01': [lambda p, lr=lr: torch.optim.AdamW([p], lr=lr, weight_decay=0.01) for lr in (1e-3, 0.01, 0.1)],
 'rmsprop_alpha0.99': [lambda p, lr=lr: torch.optim.RMSprop([p], lr=lr, alpha=0.99) for lr in (1e-2, 1e-3, 0.1)],
 'rmsprop_momentum_centered': [lambda p, lr=lr, m=m: torch.optim.RMSprop([p], lr=lr, momentum=m, centered=True) for lr in (1e-2, 1e-3, 0.1) for m in (0.9, 0.5)],
 'adagrad': [lambda p, lr=lr: torch.optim.Adagrad([p], lr=lr) for lr in (1e-2, 0.1, 1.0)],
}
import inspect
for c in d['cases']:
    init = torch.tensor(c['init']['data'], dtype=torch.float64).reshape(c['init']['shape'])
    found = None
    for i, make in enumerate(cands[c['name']]):
        p = torch.nn.Parameter(init.clone()); opt = make(p)
        ok = True
        for g, exp in zip(c['grads'], c['params_after_each_step']):
            p.grad = torch.tensor(g['data'], dtype=torch.float64).reshape(g['shape'])
            opt.step()
            e = torch.tensor(exp['data'], dtype=torch.float64).reshape(exp['shape'])
            if (p.detach() - e).abs().max() > 1e-12 * max(1, e.abs().max()): ok = False; break
        if ok:
            found = opt.defaults; break
    print(c['name'], {k: v for k, v in (found or {}).items() if k in ('lr','momentum','dampening','nesterov','weight_decay','betas','eps','amsgrad','alpha','centered','lr_decay','initial_accumulator_value')} if found else 'NOT FOUND')
