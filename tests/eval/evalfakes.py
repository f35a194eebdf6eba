"""Tiny labelled ImageFolder datasets, tiny trained runs and official-format checkpoints for the
evaluation, compare and reproduce tests (imported by tests/cli and tests/reproduce too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

TINY_TRAIN = {  # ResNet-18 on 16x16 images, 16 pairs per step, fp32: a few steps take ~1 s
    "data.dataset": "cifar10", "data.image_size": 16, "views.preset": "cifar",
    "model.backbone": "resnet18", "model.stem": "imagenet", "model.projector": "mlp",
    "model.hidden_dim": 64, "model.out_dim": 32, "optim.name": "sgd", "optim.lr": 0.05,
    "optim.warmup_steps": 2, "loop.batch_size": 16, "loop.max_steps": 4,
    "loop.precision": "fp32", "loop.checkpoint_every_steps": 2, "loop.log_every_steps": 1,
    "loop.spectrum_every_steps": 0, "loop.threads": 1,
}


def make_labelled_tree(root: Path, *, classes: int = 4, train_per_class: int = 16,
                       test_per_class: int = 6, size: int = 16, seed: int = 0) -> Path:
    """root/{train,test}/class<c>/<i>.png: noisy images whose mean colour depends on the class
    (the same per class in both splits), so a probe on good features beats chance."""
    rng = np.random.default_rng(seed)
    bases = rng.integers(30, 226, size=(classes, 3))
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = np.clip(bases[c] + rng.normal(0, 30, size=(size, size, 3)), 0, 255)
                Image.fromarray(img.astype(np.uint8)).save(folder / f"{i:04d}.png")
    return root


def train_tiny(out: Path, data_dir: Path, cache_dir: Path, **extra) -> Path:
    """A finished run folder trained in-process with TINY_TRAIN (+ extra overrides)."""
    from dimcollapse.train import run_training

    over = {**TINY_TRAIN, "data.data_dir": str(data_dir), "data.cache_dir": str(cache_dir),
            **extra}
    res = run_training(out, overrides=over, quiet=True)
    assert res.status == "complete"
    return Path(out)


def official_files(ckpt_path: Path, dest: Path, *, num_classes: int = 4) -> dict[str, Path]:
    """The same backbone weights as our checkpoint, in the official DirectCLR formats and as a
    plain torchvision state_dict (with a random fc), written under dest."""
    ours = torch.load(ckpt_path, weights_only=True)
    backbone = ours["backbone"]
    dest.mkdir(parents=True, exist_ok=True)
    head = {"weight": torch.randn(num_classes, 512), "bias": torch.zeros(num_classes)}
    per_epoch = {"epoch": 3, "optimizer": {"state": {}, "param_groups": []},
                 "model": {**{f"module.backbone.{k}": v for k, v in backbone.items()},
                           **{f"module.online_head.{k}": v for k, v in head.items()}}}
    final = {"backbone": dict(backbone), "head": head}
    tv = {**{k: v for k, v in backbone.items()},
          "fc.weight": torch.randn(1000, 512), "fc.bias": torch.zeros(1000)}
    paths = {"per_epoch": dest / "checkpoint.pth", "final": dest / "resnet18_final.pth",
             "torchvision": dest / "resnet18_tv.pth"}
    torch.save(per_epoch, paths["per_epoch"])
    torch.save(final, paths["final"])
    torch.save(tv, paths["torchvision"])
    return paths


def tree_stats(data_dir: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The tree's own train-split per-channel mean and std (it is not CIFAR-10: `data.identify`
    normalises such a folder with its own statistics), rounded to 4 decimals as there."""
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB"), dtype=np.float64) / 255.0
                       for f in sorted((data_dir / "train").glob("*/*"))])
    return (tuple(np.round(pixels.mean(axis=(0, 1, 2)), 4).tolist()),
            tuple(np.round(pixels.std(axis=(0, 1, 2)), 4).tolist()))


def tree_images(data_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow reference input: each PNG of `split` decoded with PIL in sorted class/file order,
    normalised with `tree_stats`: float32 (N, 3, H, W) and the labels (N,)."""
    mean, std = (torch.tensor(v, dtype=torch.float32).view(3, 1, 1) for v in tree_stats(data_dir))
    xs, ys = [], []
    for c, folder in enumerate(sorted(p for p in (data_dir / split).iterdir())):
        for f in sorted(folder.iterdir()):
            arr = np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255.0
            xs.append((torch.from_numpy(arr).permute(2, 0, 1) - mean) / std)
            ys.append(c)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)


def tiny_model(run_ckpt: Path, *, projector: bool = False
               ) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """The eval-mode backbone (and projector) of one of our checkpoints, rebuilt by hand."""
    from dimcollapse.models import build_backbone, build_projector

    ck = torch.load(run_ckpt, weights_only=True)
    m = ck["config"]["model"]
    bb = build_backbone(m["backbone"], stem=m["stem"])
    bb.load_state_dict(ck["backbone"])
    pj = None
    if projector:
        pj = build_projector(m["projector"], 512, d0=m["d0"], hidden_dim=m["hidden_dim"],
                             out_dim=m["out_dim"], seed=ck["config"]["seed"])
        pj.load_state_dict(ck["projector"])
        pj.eval()
    return bb.eval(), pj


def reference_features(run_ckpt: Path, data_dir: Path, split: str, *, image_size: int = 16,
                       projector: bool = False) -> tuple[torch.Tensor, torch.Tensor | None,
                                                         torch.Tensor]:
    """Slow reference: `tree_images` one image at a time through the eval-mode backbone (and
    projector) in fp32."""
    bb, pj = tiny_model(run_ckpt, projector=projector)
    images, ys = tree_images(data_dir, split)
    assert images.shape[-1] == image_size
    rs, zs = [], []
    with torch.no_grad():
        for x in images:
            r = bb(x[None])
            rs.append(r[0])
            if pj is not None:
                zs.append(pj(r)[0])
    return torch.stack(rs), torch.stack(zs) if zs else None, ys
