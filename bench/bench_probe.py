"""Benchmark: our linear probe against scikit-learn's LogisticRegression (lbfgs), same run.

Both fit the same objective (mean multinomial cross-entropy + l2/2 ||W||^2, i.e. scikit-learn's
with C = 1/(l2 N)) on the same train-standardised float32 features, with the same stopping test
(max-abs gradient <= tol, tol = 1e-4 for both), and are scored on the same test split. Target
(issue 4): test top-1 within 0.3 points of scikit-learn's or better, and >= 3x faster. Our time
includes standardising the raw features; scikit-learn is handed them already standardised.

scikit-learn runs in a child process that never imports torch: in one process, torch's OpenMP
threads keep spinning after each parallel region and slow scikit-learn's own OpenMP runtime
(a second libgomp) by 1.5-2x here, which would flatter us. It runs twice: with its default
threads (the headline `speedup`, what a user gets) and pinned to one thread, which on this
2-core machine is faster for it (`speedup_vs_fastest_sklearn`). Wall-clock time is the target;
process CPU time (all threads) is printed too, with the 1-minute load average: on a shared
machine, multi-threaded runs of either library slow down several-fold when other jobs run.

Features: by default a synthetic stand-in for a ResNet-18 representation (50,000 train + 10,000
test rows x 512, 10 classes, fixed seed): class means in a 32-d subspace mixed into 512-d, a
power-law noise spectrum, ReLU, and 5% dead (always-zero) coordinates, as in a partly collapsed
representation. `--features FILE.npz` (arrays train_x, train_y, test_x, test_y) runs on real
features instead; `--random-resnet18-cifar10 DIR` computes real-image features (an untrained
ResNet-18 on CIFAR-10; `--save-features` keeps them for reruns). The last line of output is
one JSON object.

    .venv/bin/python bench/bench_probe.py [--features F.npz] [--l2 1e-2] [--tol 1e-4] [--repeat 1]
    .venv/bin/python bench/bench_probe.py --l2-sweep [--features F.npz]   # evidence for DEFAULT_L2
    .venv/bin/python bench/bench_probe.py --random-resnet18-cifar10 ../shared/datasets/cifar10 \
        --save-features /tmp/r18.npz                                    # real-image features
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def synthetic_features(
    n_train: int = 50_000, n_test: int = 10_000, dim: int = 512, classes: int = 10,
    rank: int = 32, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_x (N, dim) float32, train_y (N,), test_x (M, dim), test_y (M,)), fixed seed."""
    import torch

    g = torch.Generator().manual_seed(seed)
    means = torch.randn(classes, rank, generator=g) * 0.8
    mix = torch.randn(rank, dim, generator=g) / rank**0.5
    basis, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
    noise_scale = 1.5 * torch.arange(1, dim + 1, dtype=torch.float32) ** -0.5
    dead = torch.randperm(dim, generator=g)[: dim // 20]

    def draw(n: int):
        y = torch.randint(0, classes, (n,), generator=g)
        z = means[y] + torch.randn(n, rank, generator=g) * 1.5
        x = z @ mix + (torch.randn(n, dim, generator=g) * noise_scale) @ basis.t()
        x = torch.relu(x + 0.2)
        x[:, dead] = 0.0
        return x.numpy(), y.numpy()

    train_x, train_y = draw(n_train)
    test_x, test_y = draw(n_test)
    return train_x, train_y, test_x, test_y


def random_resnet18_features(data_dir: str):
    """Frozen features of a randomly initialised ResNet-18 (ImageNet stem, seed 0) on CIFAR-10.

    Real-image features with the correlated, partly collapsed structure of an untrained
    network: 50,000 + 10,000 rows x 512, bf16 autocast, 32 px, no augmentation. ~1.5 min here.
    """
    import torch

    from dimcollapse.data import build_dataset
    from dimcollapse.models import build_backbone

    model = build_backbone("resnet18", stem="imagenet", seed=0).eval()
    model = model.to(memory_format=torch.channels_last)
    out = []
    for split in ("train", "test"):
        ds = build_dataset("cifar10", data_dir, split)
        mean = torch.tensor(ds.mean).view(1, 3, 1, 1)
        std = torch.tensor(ds.std).view(1, 3, 1, 1)
        feats = []
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            for i in range(0, len(ds), 500):
                x = (ds.images[i : i + 500].float() / 255 - mean) / std
                feats.append(model(x.contiguous(memory_format=torch.channels_last)).float())
        out += [torch.cat(feats).numpy(), ds.targets.numpy()]
    return tuple(out)


def sklearn_worker(folder: str) -> None:
    """Child process: fit scikit-learn on folder/xs_train.npy; write the fit and its times."""
    from sklearn import __version__
    from sklearn.linear_model import LogisticRegression

    folder = Path(folder)
    p = json.loads((folder / "params.json").read_text())
    x, y = np.load(folder / "xs_train.npy"), np.load(folder / "train_y.npy")
    walls, cpus = [], []
    for _ in range(p["repeat"]):
        clf = LogisticRegression(C=p["C"], tol=p["tol"], max_iter=p["max_iter"])
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            clf.fit(x, y)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    np.savez(folder / "sklearn.npz", coef=clf.coef_, intercept=clf.intercept_,
             pred=clf.predict(np.load(folder / "xs_test.npy")))
    (folder / "sklearn.json").write_text(json.dumps({
        "wall": min(walls), "cpu": min(cpus), "n_iter": int(np.max(clf.n_iter_)),
        "warnings": [str(w.message)[:200] for w in caught], "version": __version__,
    }))


def l2_sweep(train_x, train_y, test_x, test_y) -> None:
    """Held-out top-1 (what select_l2 sees) and test top-1 for each l2 of the default grid."""
    from dimcollapse.eval.l2_select import select_l2
    from dimcollapse.eval.probe import DEFAULT_L2_GRID, linear_probe

    picks = []
    val = {}
    for seed in (0, 1):
        sel = select_l2(train_x, train_y, grid=DEFAULT_L2_GRID, val_fraction=0.2, seed=seed)
        picks.append(sel.l2)
        for l2, v in zip(sel.grid, sel.val_top1, strict=True):
            val.setdefault(l2, []).append(v)
    rows = []
    for l2 in DEFAULT_L2_GRID:
        r = linear_probe(train_x, train_y, test_x, test_y, l2=l2)
        rows.append({"l2": l2, "val_top1_seed0": val[l2][0], "val_top1_seed1": val[l2][1],
                     "test_top1": r.top1, "iterations": r.iterations,
                     "seconds": round(r.seconds, 3)})
        print(f"l2 {l2:g}: held-out top1 {val[l2][0]:.2f} / {val[l2][1]:.2f} (seeds 0/1)  "
              f"test top1 {r.top1:.2f}  iterations {r.iterations}  {r.seconds:.2f} s")
    print(f"select_l2 picks: {picks}")
    print(json.dumps({"picks": picks, "rows": rows}))


def require_sklearn() -> None:
    """Exit with one line (status 2) when scikit-learn, the baseline, is not installed."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("bench_probe.py: error: scikit-learn is not installed (the baseline this benchmark "
              "compares against): pip install '.[bench]'", file=sys.stderr)
        raise SystemExit(2) from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", help=".npz with train_x, train_y, test_x, test_y")
    ap.add_argument("--random-resnet18-cifar10", metavar="DATA_DIR",
                    help="features of a random-init ResNet-18 on CIFAR-10 found in DATA_DIR")
    ap.add_argument("--save-features", metavar="FILE.npz", help="save the features used")
    ap.add_argument("--l2", type=float, default=None, help="default: the probe's DEFAULT_L2")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--max-iter", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=1, help="fit each N times, keep the fastest")
    ap.add_argument("--no-precondition", action="store_true",
                    help="ablation: plain L-BFGS without the curvature preconditioner")
    ap.add_argument("--l2-sweep", action="store_true",
                    help="instead: held-out (select_l2, 20%%, seeds 0 and 1) and test top-1 per l2")
    ap.add_argument("--knn", action="store_true", help="also time the kNN classifier (k=200)")
    ap.add_argument("--sklearn-worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.sklearn_worker:
        return sklearn_worker(a.sklearn_worker)
    if not (a.l2_sweep or a.knn):
        require_sklearn()  # before minutes of feature building, not in the child's traceback

    import torch

    from dimcollapse.eval.probe import DEFAULT_L2, linear_probe, probe_objective
    from dimcollapse.eval.standardize import fit_standardizer

    a.l2 = DEFAULT_L2 if a.l2 is None else a.l2

    if a.features:
        f = np.load(a.features)
        keys = ("train_x", "train_y", "test_x", "test_y")
        train_x, train_y, test_x, test_y = (f[k] for k in keys)
        source = a.features
    elif a.random_resnet18_cifar10:
        train_x, train_y, test_x, test_y = random_resnet18_features(a.random_resnet18_cifar10)
        source = "random-init ResNet-18 on CIFAR-10 (seed 0)"
    else:
        train_x, train_y, test_x, test_y = synthetic_features()
        source = "synthetic (seed 0)"
    train_x, test_x = train_x.astype(np.float32), test_x.astype(np.float32)
    if a.save_features:
        np.savez(a.save_features, train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)
    n, d = train_x.shape
    print(f"features: {source}: train {n} x {d}, test {len(test_y)}; "
          f"threads {torch.get_num_threads()}; l2 {a.l2} (sklearn C {1 / (a.l2 * n):.4g})")
    if a.l2_sweep:
        return l2_sweep(train_x, train_y, test_x, test_y)
    if a.knn:
        from dimcollapse.eval.knn import knn_classify

        res = knn_classify(train_x, train_y, test_x, test_y)
        print(f"knn     : {res.seconds:7.2f} s  top1 {res.top1:.2f}  top5 {res.top5:.2f}"
              f"  (k {res.k}, temperature {res.temperature})")

    # scikit-learn first, in a clean child process, on the features standardised as ours are
    std = fit_standardizer(torch.from_numpy(train_x))
    xs_train = std(torch.from_numpy(train_x), torch.float32).numpy()
    xs_test = std(torch.from_numpy(test_x), torch.float32).numpy()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        np.save(folder / "xs_train.npy", xs_train)
        np.save(folder / "xs_test.npy", xs_test)
        np.save(folder / "train_y.npy", np.asarray(train_y))
        (folder / "params.json").write_text(json.dumps(
            {"C": 1.0 / (a.l2 * n), "tol": a.tol, "max_iter": a.max_iter, "repeat": a.repeat}))
        # default threads (what a user gets), then pinned to one thread: on this 2-core machine
        # its OpenMP/OpenBLAS threads cost more than they gain, so one thread is its fastest.
        one = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        for name, env in (("default", {}), ("1thread", one)):
            subprocess.run([sys.executable, __file__, "--sklearn-worker", tmp], check=True,
                           env={**os.environ, **env})
            runs[name] = json.loads((folder / "sklearn.json").read_text())
            if name == "default":
                fit = np.load(folder / "sklearn.npz")
                sk_coef, sk_intercept, sk_pred = fit["coef"], fit["intercept"], fit["pred"]
    sk, sk1 = runs["default"], runs["1thread"]
    sk_top1 = 100.0 * float((sk_pred == np.asarray(test_y)).mean())
    print(f"sklearn : {sk['wall']:7.2f} s (cpu {sk['cpu']:6.2f} s)  top1 {sk_top1:.2f}"
          f"  iterations {sk['n_iter']}  (scikit-learn {sk['version']}, child process,"
          f" default threads, {len(sk['warnings'])} warnings)")
    print(f"sklearn : {sk1['wall']:7.2f} s (cpu {sk1['cpu']:6.2f} s)  one thread"
          f" (OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1), iterations {sk1['n_iter']}")

    ours_wall, ours_cpu = [], []
    for _ in range(a.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        ours = linear_probe(train_x, train_y, test_x, test_y, l2=a.l2, tol=a.tol,
                            max_iter=a.max_iter, precondition=not a.no_precondition)
        ours_wall.append(time.perf_counter() - t0)
        ours_cpu.append(time.process_time() - c0)
    print(f"ours    : {min(ours_wall):7.2f} s (cpu {min(ours_cpu):6.2f} s)  top1 {ours.top1:.2f}"
          f"  iterations {ours.iterations}  evals {ours.func_evals}"
          f"  max|grad| {ours.grad_max_abs:.2e}  {ours.stop_reason}")

    # Both solutions scored on one objective, in float64, to show they reach the same optimum.
    x64 = torch.from_numpy(xs_train).double()
    y = torch.from_numpy(np.asarray(train_y)).long()
    f_ours = float(probe_objective(ours.weight.double(), ours.bias.double(), x64, y, a.l2)[0])
    f_sk = float(probe_objective(torch.from_numpy(sk_coef).double(),
                                 torch.from_numpy(sk_intercept).double(), x64, y, a.l2)[0])
    speedup = sk["wall"] / min(ours_wall)
    cpu_speedup = sk["cpu"] / min(ours_cpu)
    speedup_fastest = min(sk["wall"], sk1["wall"]) / min(ours_wall)
    delta = ours.top1 - sk_top1
    print(f"objective ours {f_ours:.8f}  sklearn {f_sk:.8f}  (float64, same formula)")
    print(f"speedup {speedup:.2f}x wall, {cpu_speedup:.2f}x cpu time (target >= 3), "
          f"accuracy delta {delta:+.2f} points (target >= -0.3)")
    print(f"speedup over scikit-learn's faster setting: {speedup_fastest:.2f}x wall")
    print(json.dumps({
        "speedup": round(speedup, 3), "accuracy_delta": round(delta, 3),
        "cpu_speedup": round(cpu_speedup, 3), "ours_seconds": round(min(ours_wall), 3),
        "sklearn_seconds": round(sk["wall"], 3), "ours_cpu_seconds": round(min(ours_cpu), 3),
        "sklearn_cpu_seconds": round(sk["cpu"], 3), "repeat": a.repeat,
        "sklearn_1thread_seconds": round(sk1["wall"], 3),
        "speedup_vs_fastest_sklearn": round(speedup_fastest, 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "ours_top1": ours.top1, "sklearn_top1": sk_top1, "ours_iterations": ours.iterations,
        "sklearn_iterations": sk["n_iter"], "ours_objective": f_ours, "sklearn_objective": f_sk,
        "l2": a.l2, "sklearn_C": 1.0 / (a.l2 * n), "tol": a.tol, "n_train": n, "dim": d,
        "threads": torch.get_num_threads(), "features": source,
        "precondition": not a.no_precondition,
        "meets_target": bool(speedup >= 3.0 and delta >= -0.3),
    }))


if __name__ == "__main__":
    main()
