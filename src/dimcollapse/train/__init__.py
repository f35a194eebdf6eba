"""The pretraining engine: loop, step, hooks (online probe, spectrum), checkpoints, run folder.

    from dimcollapse.train import run_training
    result = run_training("runs/x", preset="cpu", overrides={"data.data_dir": "...",
                                                             "model.projector": "directclr",
                                                             "model.d0": 90})
"""

from dimcollapse.train.checkpoint import load_checkpoint, save_checkpoint
from dimcollapse.train.loop import (
    LossNotFinite,
    PeerLost,
    TrainingFailed,
    TrainResult,
    run_training,
    train,
)
from dimcollapse.train.run_folder import RunFolder, plan_run

__all__ = [
    "LossNotFinite",
    "PeerLost",
    "RunFolder",
    "TrainResult",
    "TrainingFailed",
    "load_checkpoint",
    "plan_run",
    "run_training",
    "save_checkpoint",
    "train",
]
