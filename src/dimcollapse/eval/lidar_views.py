"""LiDAR of a checkpoint (Thilak et al., ICLR 2024): q training views of n test images, embedded.

    record = lidar_of_target(ev, space="representation", q=8, samples=1000, seed=0)

What is measured (docs/spectrum.md, "LiDAR of a run"):
- samples: min(n, test split size) images of the test split, the first n of a counter-RNG
  permutation keyed by `seed` (so a class-sorted split still gives a mix of classes), then
  sorted; their dataset indices are recorded;
- views: the run's training augmentations (its config's `views.preset` at the evaluation image
  size, `dimcollapse.views.build_views`; a checkpoint without a config gets the `cifar` preset
  up to 64 px and `imagenet` above). View j = 0..q-1 of sample i is the preset's view (j mod 2)
  drawn at step j // 2 with seed `seed`: per-sample parameters are a function of (seed, step,
  index, view) only, so the q draws are distinct, reproducible and independent of the batching,
  and an asymmetric preset (imagenet: blur/solarisation differ) contributes both of its views;
- embeddings: the eval-mode backbone (BatchNorm running statistics, as feature extraction) gives
  r, and the projector z = projector(r) for --space embedding, under the evaluator's precision;
- LiDAR: a `LidarAccumulator` over chunks of whole samples (memory O(chunk x q x image + d^2)),
  delta and eps as in `spectrum.lidar`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from dimcollapse.errors import UserError
from dimcollapse.records import Record
from dimcollapse.spectrum.lidar import LIDAR_DELTA, LIDAR_EPS, LidarAccumulator

LIDAR_FILE = "lidar.json"  # next to spectrum.json in the output folder
LIDAR_DOMAIN = 0x11DA  # separates the LiDAR sample draw from other counter-RNG uses
SMALL_IMAGE_PX = 64  # without a recorded preset: cifar views up to this size, imagenet above


@dataclass(frozen=True)
class LidarRecord(Record):
    """lidar.json: LiDAR of one checkpoint's r or z, and everything needed to redo it."""

    lidar: float
    delta: float
    eps: float
    n: int  # samples (LDA classes)
    q: int  # views per sample
    dim: int
    space: str  # representation | embedding
    seed: int
    views: str  # the view preset
    views_from: str  # "checkpoint config" | "default for the image size"
    image_size: int
    split: str
    eigenvalues: tuple[float, ...]  # of Sigma_w^{-1/2} Sigma_b Sigma_w^{-1/2}, descending
    sample_indices: tuple[int, ...]  # rows of the test split, ascending
    source: dict[str, Any]


def lidar_sample_indices(size: int, samples: int, seed: int) -> torch.Tensor:
    """The first min(samples, size) of a seeded permutation of range(size), sorted. [n] int64."""
    from dimcollapse.data.hashing import permutation

    return torch.sort(permutation(size, LIDAR_DOMAIN, seed)[:min(samples, size)]).values


def view_preset_of(config: dict | None, image_size: int) -> tuple[str, str]:
    """(preset, where it came from): the checkpoint config's, else the default by image size."""
    preset = ((config or {}).get("views") or {}).get("preset")
    if preset:
        return str(preset), "checkpoint config"
    return ("cifar" if image_size <= SMALL_IMAGE_PX else "imagenet"), "default for the image size"


def view_step_and_side(j: int) -> tuple[int, int]:
    """View j of a sample is the preset's view (j mod 2) at step j // 2."""
    return j // 2, j % 2


def _view_chunks(dataset, views, idx: torch.Tensor, q: int, seed: int, mean, std, device):
    """The q views of samples idx: (q, b, 3, S, S) float32 on device, normalised."""
    out = []
    if dataset.resident:
        x = dataset.images[idx.to(dataset.images.device)].to(device).to(torch.float32).div_(255)
        for j in range(q):
            step, side = view_step_and_side(j)
            out.append(views.apply(x, idx, seed=seed, step=step, view=side, mean=mean, std=std))
        return torch.stack(out)
    from dimcollapse.views.streaming import CropTask, collate

    task = CropTask(dataset, views, seed)
    for step in range((q + 1) // 2):
        _, _, crops = collate([task[(step, i)] for i in idx.tolist()])  # (b, 2, 3, S, S)
        for side in (0, 1):
            if 2 * step + side < q:
                out.append(views.from_crops(crops[:, side].to(device), idx, seed=seed,
                                            step=step, view=side, mean=mean, std=std))
    return torch.stack(out)


@torch.no_grad()
def lidar_of_target(ev, *, space: str, q: int, samples: int, seed: int,
                    delta: float = LIDAR_DELTA, eps: float = LIDAR_EPS) -> LidarRecord:
    """LiDAR of `ev.target` (an `eval.evaluate.Evaluator`) on its test split (module docstring).

    space: "representation" (r) or "embedding" (z; our checkpoints only). q >= 2, samples >= 2.
    """
    from dimcollapse.eval.features import build_backbone_from, build_projector_from
    from dimcollapse.views import build_views

    if q < 2:
        raise UserError(f"--lidar-views {q}: LiDAR needs at least 2 views per sample")
    if samples < 2:
        raise UserError(f"--lidar-samples {samples}: LiDAR needs at least 2 samples")
    if space not in ("representation", "embedding"):
        raise UserError(f"unknown space {space!r}: choose representation or embedding")
    ckpt = ev.target.loaded
    projector = build_projector_from(ckpt).to(ev.device) if space == "embedding" else None
    backbone = build_backbone_from(ckpt).to(ev.device)
    dataset = ev.dataset("test")
    size = ev.data.image_size
    preset, views_from = view_preset_of(ckpt.config if ckpt.source == "dimcollapse" else None,
                                        size)
    views = build_views(preset, size)
    mean, std = views.mean or dataset.mean, views.std or dataset.std
    idx = lidar_sample_indices(len(dataset), samples, seed)
    if idx.numel() < 2:
        raise UserError(f"the test split has {len(dataset)} image(s): LiDAR needs at least 2")
    acc: LidarAccumulator | None = None
    chunk = max(1, ev.batch_size // q)  # images per forward pass ~ the evaluator's batch size
    autocast = ev.precision.autocast()
    for part in idx.split(chunk):
        x = _view_chunks(dataset, views, part, q, seed, mean, std, ev.device)
        b = part.numel()
        with autocast:
            e = backbone(x.flatten(0, 1))
            if projector is not None:
                e = projector(e)
        e = e.flatten(1).float().cpu().view(q, b, -1).transpose(0, 1)  # (b, q, d)
        if not torch.isfinite(e).all():
            raise UserError("the embeddings of the LiDAR views contain NaN/Inf: the "
                            "checkpoint's weights are not finite (a diverged run?)")
        if acc is None:
            acc = LidarAccumulator(e.shape[2], q=q, delta=delta, eps=eps)
        acc.update(e.double().numpy())
    assert acc is not None  # idx has >= 2 samples, so the loop ran
    sigma_b, sigma_w = acc.scatter()
    try:
        value = acc.lidar()
    except ValueError as err:
        raise UserError(f"LiDAR of {space}: {err}") from None
    from dimcollapse.spectrum.lidar import lidar_eigenvalues

    return LidarRecord(
        lidar=value, delta=delta, eps=eps, n=acc.n, q=q, dim=acc.dim, space=space, seed=seed,
        views=preset, views_from=views_from, image_size=size, split="test",
        eigenvalues=tuple(float(v) for v in lidar_eigenvalues(sigma_b, sigma_w)),
        sample_indices=tuple(int(i) for i in idx),
        source={"checkpoint": ev.target.describe(), "data": ev.data.describe(),
                "precision": ev.precision.name})
