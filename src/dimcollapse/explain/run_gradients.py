"""`explain gradient-rank` on run folders / checkpoints: load, draw one batch, measure, write.

For each target: the training config stored in the checkpoint rebuilds the encoder (backbone +
the run's projector at the checkpoint's step) and the loss; the batch is `batch_size` images
of the run's training set (the run's train subset) with the run's own views preset and image
size, drawn by `views.TwoViewBatches` with `seed` at step 0, so every arm given the same seed
sees the same images and the same augmentations. Model and views are cast to float64 for the
measurement (the run trained in its own precision; float64 here only removes round-off from
the rank count). Writes OUT/gradient_rank.json and OUT/gradient_rank.png.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from dimcollapse import build
from dimcollapse.config import config_from_dict
from dimcollapse.errors import UserError
from dimcollapse.eval.target import EvalTarget, resolve_target
from dimcollapse.explain.gradient_rank import DEFAULT_RTOL, gradient_spectra
from dimcollapse.runinfo import run_metadata, write_json

JSON_NAME = "gradient_rank.json"
PNG_NAME = "gradient_rank.png"


def encoder_of(target: EvalTarget, *, at_init: bool = False):
    """(TrainConfig, Encoder with the checkpoint's weights, at its step). Ours only.

    at_init: instead, the weights the run started from (step 0): `train.parts.assemble` seeds
    torch with the run's seed and then builds the encoder, which is repeated here.
    """
    loaded = target.loaded
    if loaded.source != "dimcollapse" or not loaded.config:
        raise UserError(f"{target.checkpoint_path} is a {loaded.source} file without a training "
                        "config: gradient-rank needs a dimcollapse run or checkpoint (it "
                        "rebuilds the run's projector, loss and views)")
    cfg = config_from_dict(loaded.config)
    if at_init:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            encoder = build.build_encoder(cfg)
        encoder.set_step(0)
        return cfg, encoder
    encoder = build.build_encoder(cfg)
    encoder.backbone.load_state_dict(loaded.backbone_state)
    encoder.projector.load_state_dict(loaded.projector_state or {})
    encoder.set_step(int(loaded.step or 0))
    return cfg, encoder


def training_views(cfg, *, batch_size: int, seed: int, data_dir: str | None = None):
    """Two views (N, 3, S, S) float32 of `batch_size` training images, the run's views preset."""
    from dimcollapse.views import TwoViewBatches, build_views

    if data_dir is not None:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, data_dir=data_dir))
    if cfg.data.data_dir is not None and not Path(cfg.data.data_dir).expanduser().exists():
        raise UserError(f"the run's data folder {cfg.data.data_dir} does not exist: pass "
                        "--data-dir")
    dataset = build.build_train_dataset(cfg, progress=False)
    if batch_size > len(dataset):
        raise UserError(f"--batch-size {batch_size} exceeds the {len(dataset)} training "
                        "images: pass a smaller --batch-size")
    views = build_views(cfg.views.preset, cfg.data.image_size)
    batch = next(iter(TwoViewBatches(dataset, views, batch_size=batch_size, seed=seed,
                                     num_workers=0)))
    return batch.view1, batch.view2


def explain_gradient_rank(targets: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                          labels: Sequence[str] | None = None, batch_size: int = 256,
                          seed: int = 0, rtol: float = DEFAULT_RTOL,
                          data_dir: str | None = None, with_init: bool = False,
                          log=None) -> dict:
    """Measure every target, write OUT/gradient_rank.json + .png; return the JSON dict.

    with_init: before each target, also its run's initial weights (step 0, a panel of its own).
    """
    from dimcollapse.report.gradient_rank_figure import write_gradient_rank_figure

    if labels and len(labels) != len(targets):
        raise UserError(f"{len(labels)} --label values for {len(targets)} runs: give one "
                        "label per run or none")
    if batch_size < 2:
        raise UserError("--batch-size must be >= 2 (the loss needs negatives)")
    if not rtol > 0:
        raise UserError("--rtol must be > 0")
    arms = []
    for i, path in enumerate(targets):
        target = resolve_target(path)
        views = None
        for at_init in (True, False) if with_init else (False,):
            cfg, encoder = encoder_of(target, at_init=at_init)
            v1, v2 = views = views or training_views(cfg, batch_size=batch_size, seed=seed,
                                                     data_dir=data_dir)
            spectra = gradient_spectra(encoder.double(), build.build_loss(cfg),
                                       v1.to(torch.float64), v2.to(torch.float64), rtol=rtol)
            step = 0 if at_init else target.loaded.step
            label = labels[i] if labels else cfg.model.projector
            label = f"{label} (step {step}{', init' if at_init else ''})" \
                if not labels or with_init else label
            arms.append({"label": label, "target": str(path),
                         "checkpoint": None if at_init else str(target.checkpoint_path),
                         "at_init": at_init, "step": step, "projector": cfg.model.projector,
                         "d0": cfg.model.d0, "loss": cfg.loss.name, "views": cfg.views.preset,
                         "image_size": cfg.data.image_size, **spectra.to_dict()})
            _say(log, label, spectra)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "what": "singular values of the contrastive loss's gradient at r and at h, the input "
                "of layer4's last residual block (Jing et al. 2022, Section 6, Fig 10)",
        "dtype": "float64 (model and views cast for this measurement)",
        "rank_rule": f"number of singular values > {rtol:g} x the largest",
        "batch": {"images": batch_size, "rows": 2 * batch_size, "seed": seed, "step": 0,
                  "note": "both views' rows stacked; BatchNorm in train mode, per view"},
        "arms": arms,
        "metadata": run_metadata(),
    }
    write_json(out / JSON_NAME, result)
    write_gradient_rank_figure(result, out / PNG_NAME)
    return result


def _say(log, label: str, spectra) -> None:
    if log is not None:
        log(f"{label}: rank dL/dr {spectra.rank_r} of {min(spectra.rows, spectra.r_dim)}, "
            f"rank dL/dh (pooled) {spectra.rank_h} of {min(spectra.rows, spectra.h_shape[0])}")
