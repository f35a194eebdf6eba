"""The one vocabulary: names of every registry, and the `dimcollapse train` flag of each field.

Torch-free, so `dimcollapse --help` stays fast. Everything that spells a name or a flag reads it
from here: `cli/train.py` builds its options from `FLAGS`, `reproduce/commands.py` writes train
command lines with `flag_args`, and each torch registry (models.PROJECTORS, losses.LOSSES, ...)
checks at import that its keys equal the names here (`Names.check`). A new arm, loss, backbone,
dataset, view preset or optimizer is one call of that registry's `register_*` function, which
adds it to the registry and to these names together (`Names.register`).

`check_d0` is the one check of d0, the number of coordinates of r the loss sees (Section 6).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from dimcollapse.errors import UserError


class Names:
    """The ordered names of one registry (its keys, without the torch objects).

    Iterable and `in`-testable, so it serves as argparse `choices` and in messages. Grows only
    through `register`, which adds a name to a registry dict and here at once.
    """

    def __init__(self, kind: str, names: tuple[str, ...]):
        self.kind = kind
        self._names = list(names)

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._names))

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"Names({self.kind!r}, {tuple(self._names)})"

    def check(self, registry: MutableMapping[str, Any]) -> None:
        """Raise at import when a registry's keys are not these names (same order)."""
        if list(registry) != self._names:
            raise RuntimeError(
                f"the {self.kind} registry {list(registry)} disagrees with "
                f"dimcollapse.catalogue {self._names}: add a {self.kind} with its register "
                "function, which updates both")

    def register(self, name: str, registry: MutableMapping[str, Any] | None = None,
                 obj: Any = None) -> None:
        """Add `name` here and, given a registry, `name` -> `obj` to it, together."""
        if not isinstance(name, str) or not name or name in self or name in (registry or {}):
            raise ValueError(f"{self.kind} name {name!r} is empty or already registered")
        if registry is not None:
            registry[name] = obj
        self._names.append(name)

    def unregister(self, name: str, registry: MutableMapping[str, Any] | None = None) -> None:
        """Undo `register` (for tests that add a name for their own duration)."""
        if registry is not None:
            registry.pop(name, None)
        if name in self._names:
            self._names.remove(name)


PROJECTORS = Names("projector", ("mlp", "linear", "none", "directclr", "orthogonal", "diagonal",
                                 "lowrank", "lowrank-diagonal", "random-subvector", "group"))
USES_D0 = Names("d0 projector", ("directclr", "lowrank", "lowrank-diagonal", "random-subvector"))
LOSSES = Names("loss", ("infonce", "ntxent"))
BACKBONES = Names("backbone", ("resnet18", "resnet50"))
STEMS = ("imagenet", "cifar")  # imagenet: 7x7/2 conv + max-pool; cifar: 3x3/1 conv, no pool
# MODEL arguments of `spectrum/probe --layers` that name a library's model (eval.layer_models)
MODEL_PREFIXES = ("torchvision:", "timm:", "hub:")
DATASETS = Names("dataset", ("cifar10", "cifar100", "stl10", "imagefolder"))
VIEW_PRESETS = Names("view preset", ("imagenet", "cifar"))
OPTIMIZERS = Names("optimizer", ("lars", "sgd", "adamw"))
# The factors `reproduce collapse-factors` varies one at a time (reproduce/factors.py), its two
# arms, and its default schedule on the cpu preset (docs/reproduce.md derives it).
COLLAPSE_FACTORS = Names("collapse factor", ("jitter", "crop", "weight-decay", "lr", "optimizer",
                                             "stem"))
COLLAPSE_FACTOR_ARMS = ("none", "mlp")
COLLAPSE_FACTORS_CPU_STEPS = 400
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # training autocast (dimcollapse.devices)
EVAL_PRECISIONS = ("auto", "bf16", "fp32")  # feature extraction (features stored float32)


# The linear probe's L2 strength on the mean cross-entropy, and the grid `select_l2` searches
# on held-out train rows (eval/probe.py, eval/l2_select.py explain both choices). Here so
# that `probe --help` and the docs state them from the one copy without importing torch.
PROBE_L2 = 1e-2
PROBE_L2_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
PROBE_VAL_FRACTION = 0.1  # share of the train rows held out by select_l2

# `dimcollapse spectrum RUN --lidar-views Q`: test images (LDA classes) LiDAR draws its q
# views of, and the seed of that draw and of the views (eval/lidar_views.py). 1000 samples
# give Sigma_b rank up to 999, above r's 512 (ResNet-18) dimensions.
LIDAR_SAMPLES = 1000
LIDAR_SEED = 0

# `dimcollapse explain gradient-rank` (explain/gradient_rank.py, docs/explain.md): a gradient's
# numerical rank counts its singular values above this share of the largest (float64).
GRADIENT_RANK_RTOL = 1e-6
GRADIENT_RANK_BATCH = 256  # images per view: 2 x 256 rows = the 512 dims of a ResNet-18's r

def check_d0(d0: Any, dim: int | None = None, *, needed_by: str | None = None) -> int | None:
    """The one check of d0: a positive integer, at most `dim` (the size of r) when known.

    `needed_by`: the projector arm that requires d0 (then None is an error). Returns int(d0)
    or None. Raises UserError naming the value, the representation size and the fix.
    """
    if d0 is None:
        if needed_by is None:
            return None
        raise UserError(
            f"projector {needed_by!r} needs d0, the number of coordinates of r the loss sees; "
            "pass d0 (--d0), e.g. 360 for a 2048-d ResNet-50 as in the paper")
    positive = not isinstance(d0, bool) and int(d0) == d0 and d0 >= 1
    if positive and (dim is None or d0 <= dim):
        return int(d0)
    if dim is None:
        raise UserError(f"d0 = {d0!r} must be a positive integer: pass --d0 >= 1")
    why = f"--d0 {d0} exceeds the representation size {dim}" if positive else \
        "d0 must be a positive integer"
    raise UserError(
        f"d0 = {d0!r} does not fit the {dim}-d representation r of {dim} coordinates: {why}; "
        f"pass --d0 between 1 and {dim} (1..{dim}; the paper uses 360 of 2048)")


@dataclass(frozen=True)
class Flag:
    """The `dimcollapse train` option of one config field.

    help: may hold {default} (the dataclass default, see `show`), {names} (`names` joined) and
    {preset[NAME]} (the value preset NAME sets, else the default). "default X" in a help names
    the dataclass default (tests/test_catalogue.py checks it); "default: ..." explains a None.
    names: the registry the value comes from; choices: whether argparse enforces it (else it
    is only listed in help).
    """

    key: str  # dotted config key
    flag: str
    help: str
    group: str
    metavar: str | None = None
    names: Names | tuple[str, ...] | None = None
    choices: bool = True
    exclusive: str | None = None  # flags sharing a tag are mutually exclusive

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")


def _f(key, flag, group, help, metavar=None, names=None, **kw) -> Flag:
    return Flag(key, flag, help, group, metavar, names, **kw)


FLAGS: tuple[Flag, ...] = (
    _f("seed", "--seed", "run", "seed of model init, batch order, views and projector draws "
       "(default {default})"),
    _f("data.dataset", "--dataset", "data", "training set (imagefolder: "
       "DIR/train/<class>/<images>, e.g. ImageNet)", names=DATASETS),
    _f("data.data_dir", "--data-dir", "data", "dataset root (ImageFolder tree or torchvision "
       "files)", "DIR"),
    _f("data.train_subset", "--train-subset", "data", "train on a fixed, seeded, "
       "class-balanced subset of N images", "N"),
    _f("data.image_size", "--image-size", "data", "side of the square views", "PIXELS"),
    _f("data.download", "--download", "data", "let torchvision download cifar10/100 or stl10 "
       "into --data-dir (needs a network)"),
    _f("data.cache_dir", "--cache-dir", "data", "cache of decoded images (default: "
       "$DIMCOLLAPSE_CACHE or ~/.cache/dimcollapse)", "DIR"),
    _f("data.num_workers", "--workers", "data", "decode processes for streaming (imagefolder) "
       "datasets", "N"),
    _f("data.resident_on_device", "--resident-on-device", "data", "keep a resident (decoded "
       "uint8) training set in GPU memory and cut batches there (default {default}; no effect "
       "on the CPU)"),
    _f("views.preset", "--views", "data", "augmentation preset (imagenet: Appendix D with "
       "blur/solarisation; cifar: small-image variant)", names=VIEW_PRESETS),
    _f("views.color_jitter_strength", "--jitter-strength", "data", "colour-jitter strength "
       "as a multiple of the preset's brightness/contrast/saturation/hue (default {default})",
       "S"),
    _f("views.crop_min_scale", "--crop-min-scale", "data", "the random crop's minimum area "
       "fraction (default: the preset's, 0.08)", "SCALE"),
    _f("model.backbone", "--backbone", "model", "torchvision ResNet, zero_init_residual",
       names=BACKBONES),
    _f("model.stem", "--stem", "model", "imagenet: 7x7/2 conv + maxpool; cifar: 3x3/1 conv, "
       "no maxpool", names=STEMS),
    # No argparse choices: an unknown arm is build_projector's one-line UserError.
    _f("model.projector", "--projector", "model", "one of {names}", "ARM", PROJECTORS,
       choices=False),
    _f("model.d0", "--d0", "model", "coordinates of r the loss sees ({names}); paper: 360 of "
       "2048", "DIMS", USES_D0, choices=False),
    _f("model.hidden_dim", "--hidden-dim", "model", "mlp projector hidden width (default: the "
       "representation size)", "DIMS"),
    _f("model.out_dim", "--out-dim", "model", "projector output size (default: the arm's "
       "own, 128 for mlp/linear)", "DIMS"),
    _f("model.groups", "--groups", "model", "groups of the group arm (default {default})", "N"),
    _f("model.sync_bn", "--sync-bn", "model", "BatchNorm statistics over the global batch "
       "under DDP (default {default})"),
    _f("loss.name", "--loss", "loss", "infonce: the official code's (cross-view negatives); "
       "ntxent: SimCLR's 2N-2 negatives", names=LOSSES),
    _f("loss.temperature", "--temperature", "loss", "softmax temperature (default {default})",
       "TAU"),
    _f("optim.name", "--optimizer", "optimisation", "default {default}", names=OPTIMIZERS),
    _f("optim.lr", "--lr", "optimisation", "peak learning rate (default: --lr-per-256 x "
       "batch / 256)"),
    _f("optim.lr_per_256", "--lr-per-256", "optimisation", "linear scaling rule base "
       "(default {default}: lr = {default} x batch / 256)", "LR"),
    _f("optim.weight_decay", "--weight-decay", "optimisation", "L2 decay, not on "
       "biases/norms (default {default})"),
    _f("optim.momentum", "--momentum", "optimisation", "lars/sgd momentum (default "
       "{default})"),
    _f("optim.eta", "--lars-eta", "optimisation", "LARS trust coefficient (default "
       "{default})", "ETA"),
    _f("optim.warmup_epochs", "--warmup-epochs", "optimisation", "linear warm-up length "
       "(default {default})", "EPOCHS"),
    _f("optim.warmup_steps", "--warmup-steps", "optimisation", "warm-up length in steps "
       "(overrides --warmup-epochs)", "STEPS"),
    _f("optim.final_lr_ratio", "--final-lr-ratio", "optimisation", "cosine ends at RATIO x "
       "lr (default {default}, the official code)", "RATIO"),
    _f("optim.probe_lr_scale", "--probe-lr-scale", "optimisation", "online classifier lr = "
       "RATIO x lr (default {default} as the official code; cpu preset {preset[cpu]})",
       "RATIO"),
    _f("loop.batch_size", "--batch-size", "schedule and loop", "global batch (image pairs), "
       "split evenly over processes (default {default})", "PAIRS"),
    _f("loop.epochs", "--epochs", "schedule and loop", "schedule length in epochs (default "
       "{default})", exclusive="length"),
    _f("loop.max_steps", "--max-steps", "schedule and loop", "schedule length in optimizer "
       "steps (overrides a preset's epochs)", "STEPS", exclusive="length"),
    _f("loop.precision", "--precision", "schedule and loop", "autocast dtype (auto: bf16 "
       "where supported, fp16 + loss scaling on older GPUs)", names=PRECISIONS),
    _f("loop.channels_last", "--channels-last", "schedule and loop", "NHWC memory format "
       "(default {default})"),
    _f("loop.device", "--device", "schedule and loop", "auto | cpu | cuda | cuda:N (auto: "
       "torchrun's local GPU, else cuda:0, else cpu)"),
    _f("loop.threads", "--threads", "schedule and loop", "CPU threads per process (default: "
       "torch's, one per core; on a busy shared machine 1 is faster)", "N"),
    _f("loop.checkpoint_every_steps", "--checkpoint-every", "schedule and loop", "write "
       "checkpoint_last.pt every STEPS steps (0: only at the end)", "STEPS"),
    _f("loop.log_every_steps", "--log-every", "schedule and loop", "metrics.jsonl line every "
       "STEPS steps", "STEPS"),
    _f("loop.spectrum_every_steps", "--spectrum-every", "schedule and loop", "RankMe and "
       "collapsed dims of r and z every STEPS steps (0: off)", "STEPS"),
    _f("loop.spectrum_window_steps", "--spectrum-window", "schedule and loop", "training "
       "batches pooled per spectrum (default: enough for 2x the representation size)",
       "STEPS"),
    _f("loop.tensorboard", "--tensorboard", "schedule and loop", "also write the "
       "metrics.jsonl records as TensorBoard scalars into RUN/tensorboard/ (needs pip install "
       "'dimcollapse[tensorboard]'; default {default})"),
    _f("loop.spectrum_probe_images", "--spectrum-probe", "schedule and loop", "also measure "
       "r and z at every spectrum step on a fixed probe set of N unaugmented, class-balanced "
       "test images, eval mode (the same for every arm and seed; 0: off; default {default}, "
       "cpu preset {preset[cpu]})", "N"),
)
NO_FLAG = ("loss.normalize", "preset")  # config fields set only through --config or presets
FLAG_OF = {f.key: f.flag for f in FLAGS}  # dotted config key -> train flag


def show(value: Any) -> str:
    """A value as --help shows it: on/off for booleans, %g for floats."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return re.sub(r"e([+-])0(\d)", r"e\1\2", f"{value:g}")  # 1e-06 -> 1e-6
    return str(value)


def flag_args(key: str, value: Any) -> list[str] | None:
    """`dimcollapse train` arguments that set config `key` to `value`; None if it has no flag
    or the value cannot be written as one (None)."""
    flag = FLAG_OF.get(key)
    if flag is None or value is None:
        return None
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag[2:]]
    return [flag, str(value)]
