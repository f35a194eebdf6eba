"""Models: backbones (torchvision ResNets, two stems), the projector registry, Encoder."""

from dimcollapse.models.arms import Projector
from dimcollapse.models.backbones import BACKBONES, STEMS, build_backbone
from dimcollapse.models.encoder import Encoder
from dimcollapse.models.projectors import PROJECTORS, USES_D0, build_projector

__all__ = [
    "BACKBONES",
    "PROJECTORS",
    "STEMS",
    "USES_D0",
    "Encoder",
    "Projector",
    "build_backbone",
    "build_projector",
]
