"""ASTEROID's toy example (paper App. A.5): y = A x + b with biased cheap data, accurate data y = A x.

x ~ N(0, I_16), A a 16 x 16 Gaussian matrix; 2000 biased points whose outputs all
get one offset b drawn per point uniformly from {0, 2, 4, 8, 16}; N accurate points
(N = 25 ... 400); a 2000-point accurate test set. Model: an MLP 16-128-128-16 (two
hidden layers of 128 ReLU units). Loss: MAE (the paper's code).

Methods (test MAE, mean +- std over seeds):
- standard: accurate points only (this is also ASTEROID's stage-1 model theta_0);
- biased only: trained on the 2000 biased points, no fine-tuning (for reference);
- pretrain+finetune: stage 2 with w = 1, then fine-tuning on the accurate points;
- ASTEROID: B_j = mean_k |f_theta0(x_j)_k - y_j,k|, w_j = exp(-B_j / gamma), gamma from
  {0.1, 0.5, 1, 2} x median(B) chosen by the accurate validation MAE after fine-tuning
  (alloop's default selection), then fine-tuning.
The accurate points are split 80/20 into training and validation (early stopping and
gamma choice) for every method alike. Bias weights, gamma candidates and the weighted
loss are alloop's own (alloop.training.bias_weights, alloop.training.loss).

Run: python benchmarks/asteroid_toy.py [--quick] [--seeds 3] [--sizes 25,50,100,200,400] [--out FILE]
(writes benchmarks/results/asteroid-toy/toy.json: per size and seed each method's test MAE, the chosen gamma
and the correlation of B with the true offset)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from lib.asteroid_toy_table import toy_table
from lib.common import ROOT

from alloop.training.bias_weights import bias_weights, gamma_candidates
from alloop.training.loss import weighted_loss

DIM = 16
OFFSETS = (0.0, 2.0, 4.0, 8.0, 16.0)
#: the result file (the docs' table is generated from it: python benchmarks/docs_tables.py)
OUT = ROOT / "benchmarks" / "results" / "asteroid-toy" / "toy.json"
#: the gamma factors searched (x median B): the paper's grid, not alloop's default (training.gamma_grid: (1,))
GAMMA_GRID = (0.1, 0.5, 1.0, 2.0)


def make_data(seed: int, n_biased: int, n_accurate_max: int, n_test: int):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(DIM, DIM))
    xb = rng.normal(size=(n_biased, DIM))
    b = rng.choice(OFFSETS, size=n_biased)
    yb = xb @ a.T + b[:, None]
    xa = rng.normal(size=(n_accurate_max, DIM))
    xt = rng.normal(size=(n_test, DIM))

    def t(v):
        return torch.as_tensor(v, dtype=torch.float32)

    return t(xb), t(yb), b, t(xa), t(xa @ a.T), t(xt), t(xt @ a.T)


class MLPs(torch.nn.Module):
    """K independent MLPs 16-128-128-16 evaluated together (batched matmuls); all start from one seeded init.

    Training the K members on one mini-batch stream with per-member losses is the same as K
    separate runs with the same data order (Adam is element-wise), at the cost of one.
    """

    def __init__(self, k: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.params = torch.nn.ParameterList()
        for fan_in, fan_out in ((DIM, 128), (128, 128), (128, DIM)):
            ref = torch.nn.Linear(fan_in, fan_out)  # PyTorch's default initialisation
            self.params.append(torch.nn.Parameter(ref.weight.detach().T.repeat(k, 1, 1).clone()))
            self.params.append(torch.nn.Parameter(ref.bias.detach().repeat(k, 1, 1).clone()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 16] -> [K, B, 16]
        h = x.unsqueeze(0)
        for layer in range(3):
            h = torch.matmul(h, self.params[2 * layer]) + self.params[2 * layer + 1]
            h = torch.relu(h) if layer < 2 else h
        return h


def mae(model: MLPs, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Test MAE of every member, [K]."""
    with torch.no_grad():
        return (model(x) - y).abs().mean(dim=(1, 2)).numpy()


def fit(model, x, y, xv, yv, *, lr, epochs, batch, patience, seed, weight=None, val_weight=None) -> np.ndarray:
    """Adam on each member's (weighted) per-point MAE (alloop's weighted_loss); per-member early stopping on
    the (weighted) validation MAE, best weights of every member restored. Returns the best validation MAEs [K]."""
    k = model.params[0].shape[0]
    opt = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    gen = torch.Generator().manual_seed(seed)
    w = torch.ones(k, len(x)) if weight is None else torch.as_tensor(weight, dtype=torch.float32).reshape(k, -1)
    wv = torch.ones(k, len(xv)) if val_weight is None else torch.as_tensor(val_weight, dtype=torch.float32).reshape(k, -1)
    w = w / w.mean(1, keepdim=True)  # each member's weights normalised by its dataset mean (see alloop.training.loss)

    def val() -> torch.Tensor:
        with torch.no_grad():
            return ((model(xv) - yv).abs().mean(-1) * wv).sum(1) / wv.sum(1)

    best = val()
    best_state = [p.detach().clone() for p in model.params]
    since = torch.zeros(k, dtype=torch.int64)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            per_point = (model(x[idx]) - y[idx]).abs().mean(-1).reshape(-1)  # [K * b]
            loss = weighted_loss(per_point, torch.zeros_like(per_point), w[:, idx].reshape(-1), 0.0, normalizer=len(idx))
            opt.zero_grad()
            loss.backward()
            opt.step()
        v = val()
        better = v < best
        best = torch.where(better, v, best)
        since = torch.where(better, torch.zeros_like(since), since + 1)
        for p, kept in zip(model.params, best_state, strict=True):
            kept[better] = p.detach()[better]
        if bool((since >= patience).all()):
            break
    with torch.no_grad():
        for p, kept in zip(model.params, best_state, strict=True):
            p.copy_(kept)
    return best.numpy()


def run_one(size: int, seed: int, cfg: dict) -> dict[str, float]:
    xb, yb, offsets, xa_all, ya_all, xt, yt = make_data(seed, 2000, max(cfg["sizes"]), 2000)
    n_val = max(5, size // 5)
    xa, ya, xv, yv = xa_all[n_val:size], ya_all[n_val:size], xa_all[:n_val], ya_all[:n_val]
    perm = np.random.default_rng(seed + 1).permutation(len(xb))  # 10% of the biased set validates stage 2
    bv, bt = perm[:200], perm[200:]
    acc = dict(lr=cfg["lr"], epochs=cfg["acc_epochs"], batch=cfg["acc_batch"], patience=cfg["patience"])
    pre = dict(lr=cfg["lr"], epochs=cfg["pre_epochs"], batch=cfg["pre_batch"], patience=cfg["patience"])
    ft = dict(lr=cfg["ft_lr"], epochs=cfg["ft_epochs"], batch=cfg["acc_batch"], patience=cfg["patience"])

    # stage 1 = standard training on the accurate points
    theta0 = MLPs(1, seed)
    fit(theta0, xa, ya, xv, yv, seed=seed, **acc)
    out = {"standard": float(mae(theta0, xt, yt)[0])}

    # stage 2 for w = 1 (member 0) and every gamma candidate (members 1..4), same init
    with torch.no_grad():
        bias = (theta0(xb)[0] - yb).abs().mean(-1).numpy().astype(np.float64)
    gammas = gamma_candidates(bias, GAMMA_GRID)
    weights = np.stack([np.ones(len(xb))] + [bias_weights(bias, g) for g in gammas])
    model = MLPs(len(weights), seed + 100)
    fit(model, xb[bt], yb[bt], xb[bv], yb[bv], seed=seed, weight=weights[:, bt], val_weight=weights[:, bv], **pre)
    out["biased only"] = float(mae(model, xt, yt)[0])

    # stage 3: fine-tune every member on the accurate points; gamma by accurate validation MAE
    val = fit(model, xa, ya, xv, yv, seed=seed, **ft)
    test = mae(model, xt, yt)
    choice = 1 + int(np.argmin(val[1:]))
    out["pretrain+finetune"] = float(test[0])
    out["ASTEROID"] = float(test[choice])
    out["gamma/median B"] = gammas[choice - 1] / float(np.median(bias))
    out["bias corr"] = float(np.corrcoef(bias, offsets)[0, 1])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 sizes, 2 seeds, short training (smoke run)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sizes", default="25,50,100,200,400")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT, help=f"result file (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = dict(sizes=[int(s) for s in args.sizes.split(",")], lr=1e-3, ft_lr=1e-4, acc_epochs=500, acc_batch=32,
               ft_epochs=500, pre_epochs=60, pre_batch=128, patience=40)
    seeds = list(range(args.seeds))
    if args.quick:
        cfg.update(sizes=[25, 100], acc_epochs=200, ft_epochs=200, pre_epochs=20, patience=20)
        seeds = [0, 1]
    t0, cpu0 = time.perf_counter(), time.process_time()
    runs = {str(size): [run_one(size, s, cfg) for s in seeds] for size in cfg["sizes"]}
    result = {"settings": {**cfg, "seeds": seeds, "threads": args.threads, "gamma_grid": list(GAMMA_GRID)},
              "runs": runs, "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - cpu0,
              "measured": time.strftime("%Y-%m-%d")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"ASTEROID toy (App. A.5): test MAE on 2000 accurate points, mean +- std over {len(seeds)} seeds\n")
    print("\n".join(toy_table(result)))
    print(f"\n{result['wall_s']:.0f} s ({result['cpu_s']:.0f} CPU s) on {args.threads} thread(s); "
          f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
