"""What an evaluation command is pointed at (a run folder or a checkpoint file) and on what data.

`resolve_target(path)`: a run folder (its checkpoint_final.pt, else checkpoint_last.pt), one of
our checkpoints, an official DirectCLR file or a torchvision state_dict (see
`eval.checkpoints`). `data_spec(target, ...)`: the dataset to evaluate on, from the flags, else
from the checkpoint's training config (ours only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dimcollapse.errors import UserError
from dimcollapse.eval.checkpoints import LoadedCheckpoint, load_checkpoint
from dimcollapse.runstatus import refresh_status

RUN_CHECKPOINTS = ("checkpoint_final.pt", "checkpoint_last.pt")  # train.run_folder's names
# Evaluation image size when neither the flags nor the checkpoint say (the datasets' own sizes;
# ImageNet: the usual 224 centre crop).
DEFAULT_IMAGE_SIZE = {"cifar10": 32, "cifar100": 32, "stl10": 96, "imagefolder": 224}


@dataclass
class EvalTarget:
    """A loaded checkpoint and where its results go."""

    checkpoint_path: Path
    run_dir: Path | None  # the run folder, when the target was one (or a checkpoint inside one)
    loaded: LoadedCheckpoint
    complete: bool  # False for a checkpoint_last.pt of an unfinished run
    run_status: str | None = None  # run.json's status (a killed "running" reads "interrupted")

    @property
    def default_out(self) -> Path:
        """Where results go without --out: the run folder, else the checkpoint's folder."""
        return self.run_dir if self.run_dir is not None else self.checkpoint_path.parent

    def describe(self) -> dict:
        return {**self.loaded.describe(), "path": str(self.checkpoint_path),
                "run_dir": None if self.run_dir is None else str(self.run_dir),
                "complete": self.complete, "run_status": self.run_status}

    def status_note(self) -> str | None:
        """One line when the run did not finish (None for a complete run or a bare file)."""
        if self.run_status in (None, "complete"):
            return None
        return (f"{self.run_dir}: the run is {self.run_status}; evaluating "
                f"{self.checkpoint_path.name} at step {self.loaded.step}")


def resolve_target(path: str | os.PathLike, *, backbone: str | None = None,
                   stem: str | None = None, allow_unsafe: bool = False) -> EvalTarget:
    """Load the checkpoint that `path` names (a run folder or a file).

    `backbone`/`stem` name the architecture of files that don't say it (checked against the
    weights where they do). Raises UserError for a folder without checkpoints.
    """
    p = Path(path)
    run_dir: Path | None
    if p.is_dir():
        found = [p / name for name in RUN_CHECKPOINTS if (p / name).is_file()]
        if not found:
            raise UserError(f"{p} holds no {' or '.join(RUN_CHECKPOINTS)}: pass a run folder "
                            "written by `dimcollapse train` or a checkpoint file")
        ckpt_path, run_dir = found[0], p
    elif p.is_file():
        ckpt_path = p
        run_dir = p.parent if (p.parent / "config.json").is_file() \
            and p.name in RUN_CHECKPOINTS else None
    else:
        raise UserError(f"no such run folder or checkpoint: {p}")
    loaded = load_checkpoint(ckpt_path, backbone=backbone, allow_unsafe=allow_unsafe)
    if stem is not None and stem != loaded.stem:
        raise UserError(f"{ckpt_path}: --stem {stem} was given but the weights have a "
                        f"{loaded.stem} stem (conv1 "
                        f"{tuple(loaded.backbone_state['conv1.weight'].shape)});"
                        f" drop --stem or pass --stem {loaded.stem}")
    complete = ckpt_path.name != "checkpoint_last.pt"
    status = refresh_status(run_dir).get("status") if run_dir is not None else None
    return EvalTarget(ckpt_path, run_dir, loaded, complete, status)


@dataclass(frozen=True)
class DataSpec:
    """The labelled dataset an evaluation uses (train split for the probe, test for both)."""

    dataset: str
    data_dir: str
    image_size: int
    cache_dir: str | None = None  # decoded-image cache (data.cache); None: the user cache
    train_subset: int | None = None  # probe on a class-balanced subset of the train split
    subset_seed: int = 0
    num_workers: int = 0  # decode processes for streaming (imagefolder) datasets
    test_split: str = "test"  # the held-out split ("val" for an ImageNet folder)

    def describe(self) -> dict:
        return {"dataset": self.dataset, "data_dir": self.data_dir,
                "image_size": self.image_size, "train_subset": self.train_subset,
                "subset_seed": self.subset_seed, "test_split": self.test_split}


def data_spec(target: EvalTarget, *, dataset: str | None = None, data_dir: str | None = None,
              image_size: int | None = None, cache_dir: str | None = None,
              train_subset: int | None = None, num_workers: int = 0) -> DataSpec:
    """Flags first, then the checkpoint's training config; UserError naming a missing flag."""
    config = target.loaded.config if target.loaded.source == "dimcollapse" else None
    return data_spec_for(config, str(target.checkpoint_path), dataset=dataset,
                         data_dir=data_dir, image_size=image_size, cache_dir=cache_dir,
                         train_subset=train_subset, num_workers=num_workers)


def data_spec_for(config: dict | None, what: str, *, dataset: str | None = None,
                  data_dir: str | None = None, image_size: int | None = None,
                  cache_dir: str | None = None, train_subset: int | None = None,
                  num_workers: int = 0) -> DataSpec:
    """`data_spec` for any model: flags first, then `config` (a dimcollapse training config,
    or None for models that do not record their data); `what` names the model in errors."""
    cfg_data = (config or {}).get("data") or {}
    same_data = dataset is None or dataset == cfg_data.get("dataset")
    dataset = dataset or cfg_data.get("dataset")
    if dataset is None:
        raise UserError(f"{what} does not say which dataset it was trained "
                        "on: pass --dataset (e.g. cifar10) and --data-dir")
    if data_dir is None and same_data:
        data_dir = cfg_data.get("data_dir")
    if data_dir is None:
        raise UserError(f"no data folder for {dataset}: pass --data-dir "
                        "(e.g. --data-dir ../shared/datasets/cifar10)")
    if not Path(data_dir).expanduser().exists():
        raise UserError(f"data folder {data_dir} does not exist (taken from "
                        f"{'the flags' if not same_data else 'the checkpoint config or flags'}); "
                        "pass --data-dir")
    if image_size is None:
        image_size = cfg_data.get("image_size") if same_data else None
    image_size = image_size or DEFAULT_IMAGE_SIZE.get(dataset, 224)
    if image_size < 8:
        raise UserError(f"--image-size {image_size} is too small: pass at least 8 pixels")
    if cache_dir is None and same_data:
        cache_dir = cfg_data.get("cache_dir")
    root = Path(data_dir).expanduser()
    test_split = "val" if dataset == "imagefolder" and not (root / "test").is_dir() \
        and (root / "val").is_dir() else "test"
    return DataSpec(dataset, str(data_dir), int(image_size), cache_dir, train_subset,
                    0, num_workers, test_split)
