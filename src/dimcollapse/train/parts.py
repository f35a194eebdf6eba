"""Assemble the trainable parts of a run from a config: model, DDP wrapper, optimizer, scaler.

Shared by the loop and the tests (the DDP equivalence test drives exactly these objects).
Order matters: restore weights, convert BatchNorm to its global-batch form (only with more than
one process), move to the device and memory format, build the optimizer over the final
parameters, restore its state, then wrap in DDP (which broadcasts rank 0's weights).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from dimcollapse import build, distributed
from dimcollapse.config import TrainConfig
from dimcollapse.devices import Precision
from dimcollapse.models import Encoder, out_dim_of
from dimcollapse.train.checkpoint import restore_rng
from dimcollapse.train.step import SSLModel


@dataclass
class TrainParts:
    encoder: Encoder  # Encoder(backbone, projector)
    classifier: nn.Linear  # online probe on r.detach()
    model: SSLModel  # encoder + classifier (BatchNorm possibly converted for SyncBN)
    ddp: nn.Module  # what the step calls: DDP(model) with >1 process, else model
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

    def state(self) -> dict[str, Any]:
        """The model/optimizer part of a checkpoint (keys of the checkpoint format)."""
        return {
            "backbone": self.encoder.backbone.state_dict(),
            "projector": self.encoder.projector.state_dict(),
            "classifier": self.classifier.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }


def assemble(cfg: TrainConfig, *, num_classes: int, device: torch.device,
             precision: Precision, world_size: int, ckpt: dict | None = None) -> TrainParts:
    """Build (and, given a checkpoint dict, restore) everything a training step needs."""
    torch.manual_seed(cfg.seed)
    encoder = build.build_encoder(cfg)
    classifier = build.build_classifier(out_dim_of(encoder.backbone), num_classes)
    if ckpt:
        encoder.backbone.load_state_dict(ckpt["backbone"])
        encoder.projector.load_state_dict(ckpt["projector"])
        classifier.load_state_dict(ckpt["classifier"])
        restore_rng(ckpt.get("rng", {}))
    model = SSLModel(encoder, classifier)
    if world_size > 1 and cfg.model.sync_bn:
        # Converts the BatchNorms inside, in place: the same SSLModel comes back.
        model = cast(SSLModel, distributed.convert_sync_bn(model, device_type=device.type))
    model.to(device)
    if cfg.loop.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = build.build_optimizer(cfg, {"backbone": encoder.backbone,
                                            "projector": encoder.projector,
                                            "classifier": classifier})
    scaler = torch.amp.GradScaler(device.type) if precision.needs_scaler else None
    if ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
    ddp: nn.Module = model
    if world_size > 1:
        ids = [device.index] if device.type == "cuda" else None
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    return TrainParts(encoder, classifier, model, ddp, optimizer, scaler, build.build_loss(cfg))
