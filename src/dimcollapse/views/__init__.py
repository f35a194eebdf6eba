"""Batched per-sample augmentations, the paper's two-view presets, and batch iterators."""

from dimcollapse.views.batches import EvalBatch, EvalBatches, TwoViewBatch, TwoViewBatches
from dimcollapse.views.params import ViewParams, sample_params
from dimcollapse.views.presets import (
    VIEW_PRESETS,
    TwoViews,
    build_views,
    normalize,
    register_view_preset,
)
from dimcollapse.views.reference import TorchvisionTwoViews, torchvision_view_transform
from dimcollapse.views.spec import ViewSpec

__all__ = ["VIEW_PRESETS", "EvalBatch", "EvalBatches", "TorchvisionTwoViews", "TwoViewBatch",
           "TwoViewBatches", "TwoViews", "ViewParams", "ViewSpec", "build_views", "normalize",
           "register_view_preset", "sample_params", "torchvision_view_transform"]
