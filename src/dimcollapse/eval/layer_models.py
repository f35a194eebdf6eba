"""Any model whose layers `dimcollapse spectrum/probe MODEL --layers ...` measure.

`load_layer_model(spec, weights=...)` turns a MODEL argument into a `LayerModel`: an eval-mode
`nn.Module`, the layer names it understands, and where it came from. MODEL is

- one of our run folders or checkpoints, an official DirectCLR file or a torchvision ResNet
  state_dict (read by `eval.checkpoints`): the module is `backbone` (+ `projector` for ours),
  and the aliases `layer1` ... `layer4`, `r` (the backbone output), `hidden` (the 2-layer
  projector's hidden activation) and `z` (the projector output) name its layers;
- `torchvision:ARCH` (e.g. `torchvision:resnet50`): `torchvision.models.get_model(ARCH)`, with
  `--weights FILE` (a state_dict in .pth/.pt or .safetensors) or `--weights NAME` (a torchvision
  weights name such as DEFAULT or IMAGENET1K_V2, downloaded by torchvision's own loader);
- `timm:NAME` (the optional extra `dimcollapse[timm]`): `timm.create_model(NAME)`, with
  `--weights FILE` or `--weights pretrained` (timm's own download, from the Hugging Face hub;
  `timm:hf-hub:ORG/REPO` names a hub repository);
- `hub:REPO:ENTRY`: `torch.hub.load(REPO, ENTRY)` (REPO a GitHub `owner/name[:ref]` or a local
  folder holding a hubconf.py), optionally with `--weights FILE`.

Layer names are `named_modules()` names of the module (or the aliases above); an unknown name
is an error listing the available ones (`monitor.watch.find_module`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from dimcollapse.errors import UserError

RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")
PRETRAINED = "pretrained"  # --weights value: the library's own pretrained weights


@dataclass
class LayerModel:
    """An eval-mode module, its layer aliases (alias -> module name) and its provenance.

    `default_layers`: what `--layers` means when omitted (ours: every ResNet stage, r, the
    projector's hidden layer where there is one, z); empty for foreign models (then --layers
    is required). `config`: our checkpoint's training config (its dataset), else None.
    """

    module: nn.Module = field(repr=False)
    source: str
    name: str
    aliases: dict[str, str] = field(default_factory=dict)
    default_layers: tuple[str, ...] = ()
    config: dict | None = field(default=None, repr=False)
    provenance: dict[str, Any] = field(default_factory=dict)
    checkpoint_path: Path | None = None

    def module_name(self, layer: str) -> str:
        """The `named_modules()` name behind `layer` (an alias or a module name)."""
        return self.aliases.get(layer, layer)

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "name": self.name, **self.provenance,
                "aliases": dict(self.aliases)}


class OurModel(nn.Module):
    """backbone (+ projector): the forward pass a checkpoint's r and z come from."""

    def __init__(self, backbone: nn.Module, projector: nn.Module | None):
        super().__init__()
        self.backbone = backbone
        self.projector = projector

    def forward(self, x: Tensor) -> Tensor:
        r = self.backbone(x)
        return r if self.projector is None else self.projector(r)


def load_layer_model(spec: str, *, weights: str | None = None, backbone: str | None = None,
                     stem: str | None = None, allow_unsafe: bool = False) -> LayerModel:
    """The `LayerModel` that `spec` names (see the module docstring for the forms)."""
    if spec.startswith("torchvision:"):
        return _torchvision(spec.removeprefix("torchvision:"), weights, allow_unsafe)
    if spec.startswith("timm:"):
        return _timm(spec.removeprefix("timm:"), weights, allow_unsafe)
    if spec.startswith("hub:"):
        return _hub(spec.removeprefix("hub:"), weights, allow_unsafe)
    if weights is not None:
        raise UserError(f"--weights applies to torchvision:, timm: and hub: models; {spec} is a "
                        "run folder or checkpoint file, which holds its weights: drop --weights")
    return _ours(spec, backbone=backbone, stem=stem, allow_unsafe=allow_unsafe)


def _ours(path: str, *, backbone: str | None, stem: str | None,
          allow_unsafe: bool) -> LayerModel:
    # one loader for every checkpoint format (eval.checkpoints), one model builder
    from dimcollapse.eval.features import build_backbone_from, build_projector_from
    from dimcollapse.eval.target import resolve_target

    target = resolve_target(path, backbone=backbone, stem=stem, allow_unsafe=allow_unsafe)
    ckpt = target.loaded
    projector = build_projector_from(ckpt) if ckpt.source == "dimcollapse" else None
    model = OurModel(build_backbone_from(ckpt), projector).eval()
    aliases = {s: f"backbone.{s}" for s in RESNET_STAGES}
    aliases["r"] = "backbone"
    defaults = [*RESNET_STAGES, "r"]
    if projector is not None:
        hidden = [n for n, m in projector.named_modules() if isinstance(m, nn.ReLU)]
        if hidden:  # the 2-layer projector: Linear, BN, ReLU (the hidden layer), Linear, BN
            aliases["hidden"] = f"projector.{hidden[-1]}"
            defaults.append("hidden")
        aliases["z"] = "projector"
        defaults.append("z")
    name = target.run_dir.name if target.run_dir else target.checkpoint_path.name
    return LayerModel(model, ckpt.source, name, aliases, tuple(defaults),
                      ckpt.config if ckpt.source == "dimcollapse" else None,
                      {"checkpoint": target.describe()}, target.checkpoint_path)


def read_state_dict(path: str | os.PathLike, *, allow_unsafe: bool = False) -> dict[str, Tensor]:
    """A state_dict from a .safetensors file or a torch.save file (.pth/.pt; weights_only).

    A file holding {"state_dict": ...} or {"model": ...} (common training checkpoints) is
    unwrapped; a `module.` prefix (DDP) is stripped.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--weights {p}: no such file; pass a .pth/.pt or .safetensors "
                        "state_dict, or a library weights name")
    if p.suffix.lower() == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state: Any = load_file(str(p))
        except (SafetensorError, OSError, ValueError) as err:
            raise UserError(f"--weights {p}: not a readable .safetensors file ({err})") from None
    else:
        from dimcollapse.safe_load import torch_load

        state, _ = torch_load(p, allow_unsafe=allow_unsafe)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"--weights {p}: expected a state_dict (names -> tensors), got a "
                        f"{type(state).__name__}")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return dict(state)


def load_weights(module: nn.Module, path: str, what: str, *,
                 allow_unsafe: bool = False) -> None:
    """Load a state_dict file into `module` strictly; UserError naming the mismatched keys."""
    state = read_state_dict(path, allow_unsafe=allow_unsafe)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        def show(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (f", ... ({len(keys)})" if len(keys) > 5 else "")
        parts = [f"{label}: {show(keys)}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                 if keys]
        raise UserError(f"--weights {path} does not fit {what} ({'; '.join(parts)}); pass "
                        "the weights of this architecture")
    module.load_state_dict(state, strict=True)


def _torchvision(arch: str, weights: str | None, allow_unsafe: bool) -> LayerModel:
    import torchvision

    known = torchvision.models.list_models()
    if arch not in known:
        import difflib

        close = difflib.get_close_matches(arch, known, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"torchvision has no model {arch!r}{hint}; see "
                        "torchvision.models.list_models()")
    if weights is None or Path(weights).suffix.lower() in (".pth", ".pt", ".safetensors") \
            or Path(weights).exists():
        model = torchvision.models.get_model(arch, weights=None)
        if weights is not None:
            load_weights(model, weights, f"torchvision {arch}", allow_unsafe=allow_unsafe)
        how = weights or "random initialisation (no --weights)"
    else:
        name = "DEFAULT" if weights == PRETRAINED else weights
        try:
            enum = torchvision.models.get_model_weights(arch)
            chosen = enum[name] if name != "DEFAULT" else enum.DEFAULT
        except (KeyError, ValueError):
            raise UserError(f"--weights {weights}: not a file and not a weights name of "
                            f"torchvision {arch}; pass a file or DEFAULT") from None
        model = torchvision.models.get_model(arch, weights=chosen)  # torchvision downloads
        how = f"torchvision weights {chosen}"
    return LayerModel(model.eval(), "torchvision", arch, provenance={"weights": str(how)})


def _timm(name: str, weights: str | None, allow_unsafe: bool) -> LayerModel:
    try:
        import timm
    except ImportError:
        raise UserError("timm: models need the timm package: pip install "
                        "'dimcollapse[timm]'") from None
    pretrained = weights == PRETRAINED
    try:
        model = timm.create_model(name, pretrained=pretrained)  # timm downloads when pretrained
    except RuntimeError as err:
        raise UserError(f"timm cannot build {name!r}: {err}") from None
    if weights is not None and not pretrained:
        load_weights(model, weights, f"timm {name}", allow_unsafe=allow_unsafe)
    how = ("timm pretrained" if pretrained else weights) or "random initialisation"
    return LayerModel(model.eval(), "timm", name, provenance={"weights": how})


def _hub(ref: str, weights: str | None, allow_unsafe: bool) -> LayerModel:
    import torch

    repo, sep, entry = ref.rpartition(":")
    if not sep or not repo or not entry:
        raise UserError(f"hub:{ref}: expected hub:REPO:ENTRY, e.g. "
                        "hub:facebookresearch/dino:main:dino_resnet50 or hub:./myrepo:mymodel")
    local = Path(repo).is_dir()
    model = torch.hub.load(repo, entry, source="local" if local else "github",
                           **({} if local else {"trust_repo": True}))
    if not isinstance(model, nn.Module):
        raise UserError(f"hub:{ref} returned a {type(model).__name__}, not an nn.Module")
    if weights is not None:
        load_weights(model, weights, f"hub:{ref}", allow_unsafe=allow_unsafe)
    return LayerModel(model.eval(), "hub", ref,
                      provenance={"weights": weights or "as the hub entry returns it"})
