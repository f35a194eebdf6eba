"""The only place that maps a `TrainConfig` to objects.

Everything else takes plain values; this module reads the config sections and calls the
registries: data.build_dataset, views.build_views / TwoViewBatches, models.build_backbone /
build_projector / Encoder, losses.LOSSES, optim.param_groups / build_optimizer / warmup_cosine.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import nn

from dimcollapse import optim
from dimcollapse.catalogue import check_d0
from dimcollapse.config import TrainConfig
from dimcollapse.data import DATASETS, build_dataset
from dimcollapse.errors import UserError
from dimcollapse.losses import LOSSES
from dimcollapse.models import Encoder, build_backbone, build_projector, out_dim_of
from dimcollapse.optim import warmup_cosine
from dimcollapse.views import TwoViewBatches, build_views


def build_train_dataset(cfg: TrainConfig, *, progress: bool = True):
    """The training split (with the seeded `--train-subset`, if any). Returns an ImageDataset."""
    d = cfg.data
    if d.data_dir is None and not d.download:
        raise UserError(f"no data folder given for {d.dataset}; pass --data-dir "
                        "(e.g. --data-dir ../shared/datasets/cifar10)")
    return build_dataset(d.dataset, d.data_dir or ".", "train", subset=d.train_subset,
                         subset_seed=cfg.seed, download=d.download, cache_dir=d.cache_dir,
                         progress=progress)


def build_batches(cfg: TrainConfig, dataset, *, rank: int, world_size: int,
                  device: torch.device, start_step: int):
    """TwoViewBatches yielding this rank's share of each global batch, from `start_step` on.

    On an accelerator a resident dataset is first moved into its memory (data.resident_on_device,
    default True): batches are then cut and augmented there. The batches are the same either
    way (same uint8 rows, same view ops on the same device).
    """
    batch = cfg.loop.batch_size
    if batch % world_size:
        raise UserError(f"--batch-size {batch} is not divisible by the {world_size} processes; "
                        f"pass a multiple of {world_size}")
    if batch > len(dataset):
        raise UserError(f"--batch-size {batch} exceeds the {len(dataset)} training images; "
                        "pass a smaller batch or a larger --train-subset")
    if cfg.data.resident_on_device and dataset.resident and device.type != "cpu":
        dataset = dataset.to(device)
    views = build_views(cfg.views.preset, cfg.data.image_size,
                        color_jitter_strength=cfg.views.color_jitter_strength,
                        crop_min_scale=cfg.views.crop_min_scale)
    return TwoViewBatches(dataset, views, batch_size=batch, seed=cfg.seed, rank=rank,
                          world_size=world_size, device=device, start_step=start_step,
                          num_workers=0 if dataset.resident else cfg.data.num_workers)


def build_encoder(cfg: TrainConfig) -> Encoder:
    """Backbone + projector (`models.Encoder`). A --d0 beyond the representation is an error."""
    m = cfg.model
    backbone = build_backbone(m.backbone, stem=m.stem)
    dim = out_dim_of(backbone)
    check_d0(m.d0, dim)  # also for arms that ignore d0: a wrong --d0 is a typo
    projector = build_projector(m.projector, dim, d0=m.d0, hidden_dim=m.hidden_dim,
                                out_dim=m.out_dim, seed=cfg.seed, groups=m.groups)
    return Encoder(backbone, projector)


def check_buildable(cfg: TrainConfig) -> None:
    """Raise the `UserError` a run would raise for this config before it reads any data.

    Builds what a run builds from the config alone, with the same functions a run calls: the
    views preset, the encoder (unknown arm, d0 beyond the representation), the loss and the
    optimizer over the encoder's parameters. `train --print-config` calls it, so a config it
    prints is one a run accepts (the data folder and the process count are checked at run
    time, where they are known).
    """
    if cfg.data.dataset not in DATASETS:
        raise UserError(f"unknown dataset {cfg.data.dataset!r}; choose one of "
                        f"{', '.join(DATASETS)}")
    build_views(cfg.views.preset, cfg.data.image_size,
                color_jitter_strength=cfg.views.color_jitter_strength,
                crop_min_scale=cfg.views.crop_min_scale)
    encoder = build_encoder(cfg)
    build_loss(cfg)
    build_optimizer(cfg, {"backbone": encoder.backbone, "projector": encoder.projector})


def build_classifier(in_dim: int, num_classes: int) -> nn.Linear:
    """The online linear probe on r.detach() (official code: nn.Linear(2048, 1000))."""
    if num_classes < 2:
        raise UserError(f"the training set has {num_classes} class(es); the online probe needs "
                        "labels from at least 2 classes")
    return nn.Linear(in_dim, num_classes)


def build_loss(cfg: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """loss(z1, z2) -> scalar, from losses.LOSSES with the configured temperature."""
    if cfg.loss.name not in LOSSES:
        raise UserError(f"unknown loss {cfg.loss.name!r}; choose one of {', '.join(LOSSES)}")
    return functools.partial(LOSSES[cfg.loss.name], temperature=cfg.loss.temperature,
                             normalize=cfg.loss.normalize)


def build_optimizer(cfg: TrainConfig, modules: dict[str, nn.Module]) -> torch.optim.Optimizer:
    """Optimizer over `modules` (name -> module); biases and norms: no decay, no LARS scaling.

    The groups of a module named "classifier" (the online probe) carry `lr_scale` =
    optim.probe_lr_scale, which `dimcollapse.optim.set_lr` applies.
    """
    o = cfg.optim
    probe = {k: m for k, m in modules.items() if k == "classifier"}
    rest = {k: m for k, m in modules.items() if k != "classifier"}
    groups = optim.param_groups(rest, weight_decay=o.weight_decay)
    if probe:
        groups += [dict(g, lr_scale=o.probe_lr_scale)
                   for g in optim.param_groups(probe, weight_decay=o.weight_decay)]
    assert o.lr is not None  # config.validate sets lr from lr_per_256 when it is None
    return optim.build_optimizer(o.name, groups, lr=o.lr, weight_decay=o.weight_decay,
                                 momentum=o.momentum, eta=o.eta)


def schedule_steps(cfg: TrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """(total_steps, warmup_steps) of the schedule, from epochs or --max-steps."""
    loop, o = cfg.loop, cfg.optim
    total = loop.max_steps if loop.max_steps is not None else loop.epochs * steps_per_epoch
    if o.warmup_steps is not None:
        warmup = o.warmup_steps
    else:
        warmup = int(math.floor(o.warmup_epochs * steps_per_epoch))
    return total, min(warmup, total)


def build_schedule(cfg: TrainConfig, *, total_steps: int, warmup_steps: int
                   ) -> Callable[[int], float]:
    """lr(step): linear warm-up from 0, then cosine to final_lr_ratio x lr (Appendix D)."""
    o = cfg.optim
    assert o.lr is not None  # config.validate sets lr from lr_per_256 when it is None
    return functools.partial(warmup_cosine, total_steps=total_steps, warmup_steps=warmup_steps,
                             base_lr=o.lr, final_lr=o.lr * o.final_lr_ratio)
