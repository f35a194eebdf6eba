"""The evaluation flags shared by `dimcollapse probe`, `spectrum` (run/checkpoint mode), `compare`.

Each command adds them with `add_eval_arguments`, turns the parsed namespace into a typed
`EvalOptions` (`EvalOptions.from_args`) and opens its target with
`dimcollapse.eval.builder.build_evaluator`, so no `cli/` module imports another. Torch-free (the
parsers import it, and `dimcollapse --help` must not load torch), hence outside `eval/`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from dimcollapse.catalogue import BACKBONES, DATASETS, EVAL_PRECISIONS, STEMS


@dataclass(frozen=True)
class EvalOptions:
    """The shared evaluation flags as plain values (see `add_eval_arguments` for each)."""

    backbone: str | None = None
    stem: str | None = None
    unsafe_load: bool = False
    dataset: str | None = None
    data_dir: str | None = None
    image_size: int | None = None
    cache_dir: str | None = None
    workers: int = 0
    features_dir: str | None = None
    no_feature_cache: bool = False
    feature_precision: str = "auto"
    batch_size: int = 512
    device: str = "auto"
    threads: int | None = None
    quiet: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> EvalOptions:
        """The fields of a namespace parsed with `add_eval_arguments` (plus --quiet)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def add_eval_arguments(p: argparse.ArgumentParser, *, precision_flag: str = "--precision"
                       ) -> None:
    """Flags shared by probe, spectrum (checkpoint mode) and compare (dests: `EvalOptions`)."""
    g = p.add_argument_group("checkpoint")
    g.add_argument("--backbone", choices=BACKBONES, help="architecture of a "
                   "file that does not say (official / torchvision files); checked otherwise")
    g.add_argument("--stem", choices=STEMS, help="stem of the weights "
                   "(read from conv1; given, it is checked)")
    g.add_argument("--unsafe-load", action="store_true", help="allow torch.load("
                   "weights_only=False) for a trusted file that weights_only refuses")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS,
                   help="labelled dataset (default: the one the run trained on)")
    g.add_argument("--data-dir", metavar="DIR", help="dataset root (default: the run's)")
    g.add_argument("--image-size", type=int, metavar="PIXELS", help="evaluation image side "
                   "(default: the run's; else 32 CIFAR, 96 STL-10, 224 ImageFolder)")
    g.add_argument("--cache-dir", metavar="DIR", help="decoded-image cache (default "
                   "$DIMCOLLAPSE_CACHE or ~/.cache/dimcollapse)")
    g.add_argument("--workers", type=int, default=0, metavar="N", help="decode processes "
                   "for streaming (imagefolder) datasets (default %(default)s)")
    g = p.add_argument_group("features")
    g.add_argument("--features-dir", metavar="DIR", help="feature cache folder (default: "
                   "OUT/features)")
    g.add_argument("--no-feature-cache", action="store_true", help="extract features "
                   "without reading or writing the cache")
    g.add_argument(precision_flag, dest="feature_precision", choices=EVAL_PRECISIONS,
                   default="auto",
                   help="autocast dtype of the forward pass (auto: bf16 where the hardware has "
                   "it); features are stored as float32 (default %(default)s)")
    g.add_argument("--batch-size", type=int, default=512, metavar="IMAGES",
                   help="images per forward pass (default %(default)s)")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    g.add_argument("--threads", type=int, metavar="N", help="CPU threads (default: torch's; "
                   "1 is faster on a busy shared machine)")


def add_layer_arguments(p: argparse.ArgumentParser) -> None:
    """--layers and --weights: `spectrum` and `probe` of any model, layer by layer."""
    g = p.add_argument_group("layers (any model: where does it collapse?)")
    g.add_argument("--layers", metavar="NAME,NAME,...", help="measure these layers (module "
                   "names of named_modules(), feature maps globally average-pooled) and write "
                   "OUT/layers.{json,md,csv,png} plus OUT/NAME/spectrum.json each. Our "
                   "checkpoints also take the aliases layer1..layer4, r, hidden (the 2-layer "
                   "projector's hidden layer), z; 'default' = all of those it has. MODEL may "
                   "then also be torchvision:ARCH, timm:NAME (pip install 'dimcollapse[timm]') "
                   "or hub:REPO:ENTRY (torch.hub)")
    g.add_argument("--weights", metavar="FILE|NAME", help="weights of a torchvision:/timm:/hub: "
                   "MODEL: a state_dict file (.pth/.pt or .safetensors), a torchvision weights "
                   "name (DEFAULT, IMAGENET1K_V2, ...) or 'pretrained' (the library's own "
                   "download; default: random initialisation)")
