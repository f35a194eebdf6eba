"""One loader for the checkpoints users have: ours, the official DirectCLR code's, torchvision's.

Recognised formats (`SOURCES`; key names checked against facebookresearch/directclr's
`directclr/main.py`, `linear_probe.py` and `spectrum.py`):

- "dimcollapse": our own file (`dimcollapse.checkpoint_format`, read and checked there),
  `format == "dimcollapse-checkpoint"`, keys backbone / projector / classifier / step / config
- "directclr-official": the official trainer's per-epoch `checkpoint.pth`, `dict(epoch=epochs
  completed, model=DDP(model).state_dict(), optimizer=LARS state)`; model keys are
  `module.backbone.*` (torchvision ResNet-50, fc = Identity), `module.online_head.*` (Linear
  2048 -> 1000) and, for `--mode simclr|single`, `module.projector.*`.
- "directclr-official-final": the trainer's final file `dict(backbone=..., head=...)` (the
  online head), also accepted with `projector=...`, the keys the official `spectrum.py` reads.
- "torchvision": a plain torchvision ResNet `state_dict` (`conv1.weight`, ..., `fc.*`); the
  supervised `fc` layer is returned as the classifier, not part of the backbone.

Files are read with `torch.load(weights_only=True)` (see `dimcollapse.safe_load`); the
architecture comes from the file's config, else from its key layout; `backbone=` names it where
it can't be told and is checked against the keys where it can.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from torch import Tensor, nn

from dimcollapse.catalogue import STEMS
from dimcollapse.checkpoint_format import FORMAT as FORMAT_NAME
from dimcollapse.checkpoint_format import FORMAT_VERSION as FORMAT_VERSION  # re-exported
from dimcollapse.checkpoint_format import check_ours, is_ours
from dimcollapse.errors import UserError
from dimcollapse.eval.resnet_state import (
    FEATURE_DIMS,
    check_backbone_state,
    infer_stem,
    resolve_arch,
)
from dimcollapse.safe_load import torch_load

SOURCES = {
    "dimcollapse": f"dimcollapse checkpoint (format {FORMAT_NAME!r})",
    "directclr-official": "official DirectCLR per-epoch checkpoint.pth ({epoch, model, "
    "optimizer}, model keys module.backbone.*)",
    "directclr-official-final": "official DirectCLR final file ({backbone, head})",
    "torchvision": "torchvision ResNet state_dict (conv1.weight ... fc.bias)",
}


@dataclass
class LoadedCheckpoint:
    """A backbone's weights and what is known about them, whatever file they came from.

    `backbone_state` has torchvision ResNet key names without `fc.*`: it loads with
    `strict=True` into `torchvision.models.<backbone>()` whose `fc` is `nn.Identity()`
    (with conv1 swapped for a 3x3 one and maxpool for Identity when `stem == "cifar"`).
    """

    backbone_state: dict[str, Tensor] = field(repr=False)
    backbone: str  # "resnet18" | "resnet50"
    stem: str  # "imagenet" (7x7 conv1) | "cifar" (3x3 conv1) | as named by the config
    feature_dim: int  # width of r: 512 for resnet18, 2048 for resnet50
    source: str  # a key of SOURCES
    path: str
    weights_only: bool  # False only when the user allowed a full unpickle
    projector_state: dict[str, Tensor] | None = field(default=None, repr=False)
    classifier_state: dict[str, Tensor] | None = field(default=None, repr=False)
    config: dict | None = field(default=None, repr=False)
    step: int | None = None  # optimizer steps completed (ours)
    epoch: int | None = None  # epochs completed (official per-epoch files)
    notes: tuple[str, ...] = ()

    def describe(self) -> dict:
        """Plain JSON-able provenance, for result files."""
        return {
            "path": self.path, "source": self.source, "backbone": self.backbone,
            "stem": self.stem, "feature_dim": self.feature_dim, "step": self.step,
            "epoch": self.epoch, "weights_only": self.weights_only,
            "has_projector": bool(self.projector_state),
            "has_classifier": bool(self.classifier_state), "notes": list(self.notes),
        }


def load_checkpoint(
    path: str | os.PathLike, *, backbone: str | None = None, allow_unsafe: bool = False
) -> LoadedCheckpoint:
    """Read `path` in any format of `SOURCES`; check the backbone weights; return them on CPU.

    `backbone` ("resnet18" | "resnet50") names the architecture for files that don't say (it is
    inferred from the key layout when omitted, and must agree with the file when given).
    `allow_unsafe` permits `torch.load(weights_only=False)` for files weights_only refuses,
    after an `UnsafeLoadWarning` (the CLI's `--unsafe-load`). Raises UserError for a missing or
    unreadable file, an unrecognised format (listing the recognised ones), or weights that do
    not match the architecture.
    """
    obj, weights_only = torch_load(path, allow_unsafe=allow_unsafe)
    notes: list[str] = []
    if isinstance(obj, nn.Module):  # a whole pickled model (only reachable with allow_unsafe)
        obj = obj.state_dict()
        notes.append("file held a pickled nn.Module; its state_dict was used")
    source = detect_format(obj, path)
    assert isinstance(obj, Mapping)  # detect_format rejects anything else
    if source == "dimcollapse":
        check_ours(obj, path, required=("backbone",))  # what evaluation needs
    parsed = _PARSERS[source](obj, notes)
    config = parsed.get("config")
    model_cfg = config.get("model", {}) if isinstance(config, Mapping) else {}
    cfg_arch = model_cfg.get("backbone") if isinstance(model_cfg, Mapping) else None
    if backbone is not None and cfg_arch is not None and backbone != cfg_arch:
        raise UserError(
            f"{path} was trained with backbone {cfg_arch} but backbone {backbone} was asked "
            f"for: drop --backbone or pass --backbone {cfg_arch}"
        )
    label = SOURCES[source]
    arch = resolve_arch(parsed["backbone"], backbone or cfg_arch, source=label)
    if backbone is None and cfg_arch is None:
        notes.append(f"architecture {arch} inferred from the key layout")
    state = check_backbone_state(parsed["backbone"], arch, source=label)
    stem = infer_stem(state)
    assert stem is not None  # check_backbone_state admits a 3x3 or 7x7 conv1 only
    cfg_stem = model_cfg.get("stem") if isinstance(model_cfg, Mapping) else None
    if cfg_stem is not None:
        if cfg_stem in STEMS and stem != cfg_stem:
            raise UserError(
                f"{path}: the config says stem {cfg_stem!r} but conv1 is a {stem} stem: the "
                "file is inconsistent; re-save it"
            )
        stem = cfg_stem
    return LoadedCheckpoint(
        backbone_state=state, backbone=arch, stem=stem, feature_dim=FEATURE_DIMS[arch],
        source=source, path=str(path), weights_only=weights_only,
        projector_state=parsed.get("projector"), classifier_state=parsed.get("classifier"),
        config=dict(config) if isinstance(config, Mapping) else None,
        step=_int_or_none(parsed.get("step")), epoch=_int_or_none(parsed.get("epoch")),
        notes=tuple(notes),
    )


def detect_format(obj: object, path: str | os.PathLike = "checkpoint") -> str:
    """Which key of SOURCES `obj` (a loaded file) is; UserError listing them if none."""
    known = "; ".join(SOURCES.values())
    if not isinstance(obj, Mapping):
        raise UserError(
            f"{path} holds a {type(obj).__name__}, not a checkpoint dict: recognised formats "
            f"are {known}"
        )
    if "format" in obj:
        if is_ours(obj):
            return "dimcollapse"
        raise UserError(f"{path} has format {obj['format']!r}: recognised formats are {known}")
    model = obj.get("model")
    if isinstance(model, Mapping) and any(
        k.startswith(("module.backbone.", "backbone.")) for k in model
    ):
        return "directclr-official"
    if isinstance(obj.get("backbone"), Mapping) and "conv1.weight" in obj["backbone"]:
        return "directclr-official-final"
    if "conv1.weight" in obj and all(isinstance(v, Tensor) for v in obj.values()):
        return "torchvision"
    shown = ", ".join(list(map(str, obj))[:6])
    raise UserError(
        f"{path} is not a recognised checkpoint (top-level keys: {shown}): recognised formats "
        f"are {known}"
    )


def _parse_ours(obj: Mapping, notes: list[str]) -> dict:
    return {"backbone": dict(obj["backbone"]), "projector": _opt_dict(obj.get("projector")),
            "classifier": _opt_dict(obj.get("classifier")), "config": obj.get("config"),
            "step": obj.get("step")}


def _parse_official(obj: Mapping, notes: list[str]) -> dict:
    model = dict(obj["model"])
    if all(k.startswith("module.") for k in model):  # saved from the DDP wrapper
        model = {k[len("module.") :]: v for k, v in model.items()}
    parts: dict[str, dict] = {"backbone": {}, "projector": {}, "online_head": {}}
    ignored = []
    for k, v in model.items():
        head, _, rest = k.partition(".")
        if head in parts and rest:
            parts[head][rest] = v
        else:
            ignored.append(k)
    if ignored:
        notes.append(f"ignored model keys: {', '.join(ignored[:5])}")
    return {"backbone": parts["backbone"], "projector": parts["projector"] or None,
            "classifier": parts["online_head"] or None, "epoch": obj.get("epoch")}


def _parse_official_final(obj: Mapping, notes: list[str]) -> dict:
    return {"backbone": dict(obj["backbone"]), "projector": _opt_dict(obj.get("projector")),
            "classifier": _opt_dict(obj.get("head"))}


def _parse_torchvision(obj: Mapping, notes: list[str]) -> dict:
    fc = {k[len("fc.") :]: v for k, v in obj.items() if k.startswith("fc.")}
    if fc:
        notes.append("fc.* (the supervised classifier) returned as classifier, not backbone")
    return {"backbone": {k: v for k, v in obj.items() if not k.startswith("fc.")},
            "classifier": fc or None}


_PARSERS = {
    "dimcollapse": _parse_ours,
    "directclr-official": _parse_official,
    "directclr-official-final": _parse_official_final,
    "torchvision": _parse_torchvision,
}


def _opt_dict(x) -> dict | None:
    return dict(x) if isinstance(x, Mapping) else None


def _int_or_none(x) -> int | None:
    try:
        return None if x is None else int(x)
    except (TypeError, ValueError):
        return None
