"""Models: backbones (torchvision ResNets, two stems), the projector registry, Encoder."""

from dimcollapse.models.arms import Projector, out_dim_of
from dimcollapse.models.backbones import BACKBONES, STEMS, build_backbone, register_backbone
from dimcollapse.models.encoder import Encoder
from dimcollapse.models.projectors import (
    PROJECTORS,
    USES_D0,
    ProjectorOptions,
    build_projector,
    projector_d0,
    register_projector,
    unregister_projector,
)

__all__ = [
    "BACKBONES",
    "PROJECTORS",
    "STEMS",
    "USES_D0",
    "Encoder",
    "Projector",
    "ProjectorOptions",
    "build_backbone",
    "build_projector",
    "out_dim_of",
    "projector_d0",
    "register_backbone",
    "register_projector",
    "unregister_projector",
]
