"""Recognising and checking ResNet backbone state dicts (torchvision key layout, fc = Identity).

Every checkpoint format we read stores the backbone as a torchvision ResNet `state_dict`, maybe
under a prefix. These helpers infer the architecture from the key names (block type and blocks
per stage), infer the stem from conv1's kernel (7x7: ImageNet stem; 3x3: CIFAR stem), and check
names and shapes against torchvision's model before anything is loaded, so a mismatch is a
one-line `UserError` instead of a page of missing keys.
"""

from __future__ import annotations

import functools
import re

import torch
from torch import Tensor

from dimcollapse.catalogue import BACKBONES
from dimcollapse.errors import UserError

SUPPORTED_BACKBONES = BACKBONES  # what models.build_backbone builds
FEATURE_DIMS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048, "resnet101": 2048,
                "resnet152": 2048}
# (bottleneck blocks?, blocks per stage) -> torchvision name
_LAYOUTS: dict[tuple[bool, tuple[int, ...]], str] = {
    (False, (2, 2, 2, 2)): "resnet18",
    (False, (3, 4, 6, 3)): "resnet34",
    (True, (3, 4, 6, 3)): "resnet50",
    (True, (3, 4, 23, 3)): "resnet101",
    (True, (3, 8, 36, 3)): "resnet152",
}
_STEMS = {7: "imagenet", 3: "cifar"}


def infer_resnet(state: dict[str, Tensor]) -> str | None:
    """torchvision ResNet name whose key layout `state` has, or None if it is not a ResNet."""
    blocks: list[set[int]] = [set() for _ in range(4)]
    for key in state:
        m = re.match(r"layer([1-4])\.(\d+)\.conv1\.weight$", key)
        if m:
            blocks[int(m.group(1)) - 1].add(int(m.group(2)))
    counts = tuple(len(b) for b in blocks)
    if "conv1.weight" not in state or any(b != set(range(len(b))) for b in blocks):
        return None
    return _LAYOUTS.get(("layer1.0.conv3.weight" in state, counts))


def infer_stem(state: dict[str, Tensor]) -> str | None:
    """"imagenet" (7x7 conv1) or "cifar" (3x3 conv1), or None for another kernel size."""
    w = state.get("conv1.weight")
    return _STEMS.get(int(w.shape[-1])) if w is not None and w.ndim == 4 else None


@functools.lru_cache(maxsize=8)
def _expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    # torchvision: only for the expected shapes (reproduce reads FEATURE_DIMS without it)
    import torchvision

    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = getattr(torchvision.models, arch)()
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith("fc.")}


def check_backbone_state(
    state: dict[str, Tensor], arch: str, *, source: str
) -> dict[str, Tensor]:
    """Check `state` against torchvision's `arch` with fc = Identity; return it ready to load.

    conv1 may be 7x7 (ImageNet stem) or 3x3 (CIFAR stem). BatchNorm `num_batches_tracked`
    counters missing from older files are added as 0, so `load_state_dict(strict=True)` works.
    Raises UserError naming the first few missing, unexpected or mis-shaped keys.
    """
    expected = _expected_shapes(arch)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = []
    for k, shape in expected.items():
        if k not in state:
            continue
        if not isinstance(state[k], Tensor):
            wrong.append(f"{k} (a {type(state[k]).__name__}, not a tensor)")
            continue
        got = tuple(state[k].shape)
        ok = got == shape or (k == "conv1.weight" and got in ((64, 3, 3, 3), (64, 3, 7, 7)))
        if not ok:
            wrong.append(f"{k} {list(got)} (expected {list(shape)})")
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            problems.append(f"{label}: {', '.join(items[:3])}{more}")
    if problems:
        raise UserError(
            f"the {source} backbone weights do not match a {arch} "
            f"({'; '.join(problems)}): pass the right --backbone or a matching checkpoint"
        )
    for k in expected:
        if k not in state:  # only num_batches_tracked gets here
            state[k] = torch.tensor(0, dtype=torch.long)
    return {k: state[k] for k in expected}


def resolve_arch(state: dict[str, Tensor], backbone: str | None, *, source: str) -> str:
    """The architecture to use: `backbone` if given (checked against the keys), else inferred."""
    inferred = infer_resnet(state)
    if backbone is not None:
        if backbone not in SUPPORTED_BACKBONES:
            raise UserError(
                f"unknown backbone {backbone!r}: choose one of {', '.join(SUPPORTED_BACKBONES)}"
            )
        if inferred is not None and inferred != backbone:
            raise UserError(
                f"the {source} file holds a {inferred} but backbone {backbone} was asked for: "
                f"pass --backbone {inferred} or the right file"
            )
        return backbone
    if inferred is None:
        raise UserError(
            f"cannot tell the architecture of the {source} weights from their keys: pass "
            f"--backbone ({', '.join(SUPPORTED_BACKBONES)})"
        )
    if inferred not in SUPPORTED_BACKBONES:
        raise UserError(
            f"the {source} file holds a {inferred}, which dimcollapse does not build: supported "
            f"backbones are {', '.join(SUPPORTED_BACKBONES)}"
        )
    return inferred
