"""Frozen features of a checkpoint on a dataset split, extracted once and cached on disk.

The paper evaluates the frozen backbone output r (Section 6, Table 1; Fig 9 is the spectrum of
r on the validation set) and, for Fig 2, the projector output z. `extract_features` runs the
backbone in eval mode (BatchNorm uses its running statistics) over `views.EvalBatches` (dataset
order, no augmentation), under bf16 autocast where the hardware has it (`Precision`), and
stores the features as float32. `cached_features` adds a cache: one file per (checkpoint,
dataset split, extraction settings), written atomically, reused on rerun and ignored as soon as
anything in its key changes (the checkpoint's bytes, the data, the image size, ...).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn

from dimcollapse.errors import UserError
from dimcollapse.eval.checkpoints import LoadedCheckpoint
from dimcollapse.models import Projector, build_backbone, build_projector
from dimcollapse.progress import Progress
from dimcollapse.runinfo import atomic_write
from dimcollapse.views import EvalBatches

CACHE_FORMAT = "dimcollapse-features"
CACHE_VERSION = 1
SPACES = ("r", "z")  # r: backbone output (representation); z: projector output (embedding)
DEFAULT_BATCH_SIZE = 512


def build_backbone_from(ckpt: LoadedCheckpoint) -> nn.Module:
    """The checkpoint's backbone (torchvision ResNet, fc = Identity), weights loaded, eval mode."""
    if ckpt.stem not in ("imagenet", "cifar"):
        raise UserError(f"{ckpt.path}: unknown stem {ckpt.stem!r}; pass --stem imagenet|cifar")
    backbone = build_backbone(ckpt.backbone, stem=ckpt.stem)
    backbone.load_state_dict(ckpt.backbone_state, strict=True)
    return backbone.eval()


def build_projector_from(ckpt: LoadedCheckpoint) -> nn.Module:
    """The projector of one of our checkpoints, rebuilt from its config, weights loaded.

    Only our checkpoints say which arm their projector is; for the others there is no z.
    Stochastic arms (random-subvector, group) use the draw of the checkpoint's last step.
    """
    config = ckpt.config or {}
    model = config.get("model") if ckpt.source == "dimcollapse" else None
    if not model:
        raise UserError(
            f"{ckpt.path} is a {ckpt.source} file: only dimcollapse checkpoints record their "
            "projector arm, so the embedding space is unavailable; use --space representation")
    projector = build_projector(
        model["projector"], ckpt.feature_dim, d0=model.get("d0"),
        hidden_dim=model.get("hidden_dim"), out_dim=model.get("out_dim"),
        seed=int(config.get("seed", 0)), groups=model.get("groups", 8))
    projector.load_state_dict(ckpt.projector_state or {}, strict=True)
    cast(Projector, projector).set_step(max(int(ckpt.step or 1) - 1, 0))  # every arm has it
    return projector.eval()


@dataclass
class Features:
    """Frozen features of one split. r: float32 (N, D); z: float32 (N, d) or None;
    targets: int64 (N,). `cache_hit` says whether they came from the cache file `path`."""

    r: Tensor
    z: Tensor | None
    targets: Tensor
    key: dict
    seconds: float = 0.0  # extraction time (0 when read from the cache)
    cache_hit: bool = False
    path: Path | None = None
    info: dict = field(default_factory=dict)

    def space(self, name: str) -> Tensor:
        if name == "r":
            return self.r
        if self.z is None:
            raise ValueError("these features were extracted without the projector")
        return self.z


@torch.no_grad()
def extract_features(backbone: nn.Module, dataset, *, image_size: int,
                     projector: nn.Module | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                     precision=None, device: str | torch.device = "cpu",
                     channels_last: bool = True, num_workers: int = 0,
                     progress: bool = False, desc: str = "features",
                     progress_interval_s: float | None = None) -> dict[str, Tensor]:
    """r = backbone(x) (and z = projector(r)) for every image of `dataset`, in dataset order.

    Shapes: N images -> {"r": (N, D) float32, "z": (N, d) float32 (with a projector),
    "targets": (N,) int64}. A `group` projector's (N, G, k) output is flattened to (N, G k).
    `precision`: a `devices.Precision` (autocast dtype); None = fp32. Both modules are
    put in eval mode: BatchNorm uses its running statistics, so a row's features do not depend
    on the other rows of its batch. progress: a bar on a terminal, else a plain line every
    `progress_interval_s` seconds (`dimcollapse.progress`).
    """
    device = torch.device(device)
    backbone = backbone.eval().to(device)
    if projector is not None:
        projector = projector.eval().to(device)
    if channels_last:
        backbone = backbone.to(memory_format=torch.channels_last)
    batches = EvalBatches(dataset, batch_size=batch_size, image_size=image_size, device=device,
                          num_workers=num_workers)
    n = len(dataset)
    out: dict[str, Tensor] = {}
    bar = Progress(n, prefix=f"dimcollapse: {desc}", unit="image", desc=desc, leave=False,
                   quiet=not progress, interval_s=progress_interval_s)
    autocast = precision.autocast() if precision is not None else contextlib.nullcontext()
    try:
        for index, images, _ in batches:
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast:
                r = backbone(images)
                z = projector(r) if projector is not None else None
            for name, value in (("r", r), ("z", z)):
                if value is None:
                    continue
                scatter_rows(out, name, index, value.flatten(1).float().cpu(), n)
            bar.update(len(index))
    finally:
        bar.close()
    out["targets"] = dataset.targets.clone()
    for name in ("r", "z"):
        if name in out and not torch.isfinite(out[name]).all():
            bad = int((~torch.isfinite(out[name])).any(dim=1).sum())
            raise UserError(f"{bad} of {n} {name} vectors contain NaN/Inf: the checkpoint's "
                            "weights are not finite (a diverged run?); use an earlier checkpoint")
    return out


def scatter_rows(out: dict[str, Tensor], name: str, index: Tensor, value: Tensor, n: int) -> None:
    """out[name][index] = value, allocating out[name] as float32 (n, d) on first use: a batch's
    rows land at their dataset positions."""
    if name not in out:
        out[name] = torch.empty(n, value.shape[1], dtype=torch.float32)
    out[name][index] = value


def file_digest(path: str | os.PathLike, chunk_bytes: int = 1 << 22) -> str:
    """sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            h.update(chunk)
    return h.hexdigest()


def dataset_fingerprint(dataset) -> dict:
    """What identifies a split's content: name, split, root, size, labels, and the pixels
    (resident: a hash of the uint8 array) or the files (streaming: paths, sizes, mtimes)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(dataset.targets.numpy().tobytes())
    h.update(dataset.source_indices.numpy().tobytes())
    if dataset.resident:
        h.update(str(tuple(dataset.images.shape)).encode())
        h.update(dataset.images.contiguous().numpy().tobytes())
    else:
        for f in dataset.files:
            st = os.stat(f)
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return {"name": dataset.name, "split": dataset.split,
            "root": str(Path(dataset.root).resolve()), "n": len(dataset),
            "mean": list(dataset.mean), "std": list(dataset.std), "content": h.hexdigest()}


def feature_key(ckpt: LoadedCheckpoint, dataset, *, image_size: int, spaces: tuple[str, ...],
                precision_name: str, batch_size: int, checkpoint_digest: str | None = None
                ) -> dict:
    """The cache key: everything the features depend on (JSON-able)."""
    return {
        "checkpoint": {"sha256": checkpoint_digest or file_digest(ckpt.path),
                       "size": os.path.getsize(ckpt.path), "step": ckpt.step,
                       "epoch": ckpt.epoch, "source": ckpt.source, "backbone": ckpt.backbone,
                       "stem": ckpt.stem},
        "data": dataset_fingerprint(dataset),
        "image_size": int(image_size),
        "spaces": sorted(spaces),
        "precision": precision_name,
        "batch_size": int(batch_size),
        "torch": str(torch.__version__),
    }


def _key_digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def cache_path(cache_dir: str | os.PathLike, key: dict) -> Path:
    """cache_dir/<split>-<spaces>-<digest of key>.pt"""
    spaces = "".join(key["spaces"])
    return Path(cache_dir) / f"{key['data']['split']}-{spaces}-{_key_digest(key)}.pt"


def read_cache(path: Path, key: dict) -> dict[str, Tensor] | None:
    """The cached tensors if `path` holds features with exactly this key, else None."""
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - a damaged cache file is recomputed, never trusted
        return None
    if not isinstance(obj, dict) or obj.get("format") != CACHE_FORMAT \
            or obj.get("version") != CACHE_VERSION or obj.get("key") != key:
        return None
    return obj["tensors"]


def write_cache(path: Path, key: dict, tensors: dict[str, Tensor]) -> None:
    """torch.save to a temp file in the same folder, fsync, rename (atomic)."""
    payload = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "key": key, "tensors": tensors}
    atomic_write(path, lambda f: torch.save(payload, f))


def cached_features(ckpt: LoadedCheckpoint, dataset, *, image_size: int,
                    spaces: tuple[str, ...] = ("r",), cache_dir: str | os.PathLike | None,
                    precision=None, batch_size: int = DEFAULT_BATCH_SIZE,
                    device: str | torch.device = "cpu", num_workers: int = 0,
                    progress: bool = False, checkpoint_digest: str | None = None,
                    progress_interval_s: float | None = None) -> Features:
    """Features of `dataset` under `ckpt`, from `cache_dir` when a file with the same key is
    there, else extracted and (when `cache_dir` is not None) written there atomically.

    `spaces`: ("r",) or ("r", "z"); z needs a dimcollapse checkpoint (its projector).
    `precision`: a `Precision` (None: fp32). Returns `Features` (float32 tensors on the CPU).
    """
    unknown = set(spaces) - set(SPACES)
    if unknown or "r" not in spaces:
        raise ValueError(f"spaces must be ('r',) or ('r', 'z'), got {spaces}")
    spaces = tuple(s for s in SPACES if s in spaces)
    name = precision.name if precision is not None else "fp32"
    key = feature_key(ckpt, dataset, image_size=image_size, spaces=spaces, precision_name=name,
                      batch_size=batch_size, checkpoint_digest=checkpoint_digest)
    path = cache_path(cache_dir, key) if cache_dir is not None else None
    if path is not None:
        assert cache_dir is not None  # path is only set with a cache_dir
        # A file holding both spaces also serves a request for r alone.
        for candidate_spaces in ((spaces,) if "z" in spaces else (spaces, ("r", "z"))):
            cand_key = dict(key, spaces=sorted(candidate_spaces))
            cand = cache_path(cache_dir, cand_key)
            tensors = read_cache(cand, cand_key)
            if tensors is not None:
                return Features(tensors["r"], tensors.get("z") if "z" in spaces else None,
                                tensors["targets"], cand_key, 0.0, True, cand)
    projector = build_projector_from(ckpt) if "z" in spaces else None
    t0 = time.perf_counter()
    tensors = extract_features(build_backbone_from(ckpt), dataset, image_size=image_size,
                               projector=projector, batch_size=batch_size, precision=precision,
                               device=device, num_workers=num_workers, progress=progress,
                               desc=f"{dataset.split} features",
                               progress_interval_s=progress_interval_s)
    seconds = time.perf_counter() - t0
    if path is not None:
        write_cache(path, key, tensors)
    return Features(tensors["r"], tensors.get("z"), tensors["targets"], key, seconds, False, path)
