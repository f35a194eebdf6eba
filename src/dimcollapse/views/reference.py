"""The same views as per-image torchvision transforms on PIL images (the classic pipeline).

This is the baseline `bench/bench_train.py` measures against and the definition the tests
compare with: one `ViewSpec` maps to one `torchvision.transforms.Compose`. It draws from
torchvision's global RNG (not our counter RNG), so it matches in distribution, not sample by
sample; the per-op tests pin the parameters instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from dimcollapse.views.presets import VIEW_PRESETS
from dimcollapse.views.spec import ViewSpec


def torchvision_view_transform(spec: ViewSpec, image_size: int, mean: Sequence[float],
                               std: Sequence[float]):
    """PIL image -> normalised float tensor (3, S, S), per torchvision, for one view."""
    # torchvision: only the PIL reference views use it; the tensor views do not
    from torchvision import transforms as T

    interp = {"bicubic": T.InterpolationMode.BICUBIC,
              "bilinear": T.InterpolationMode.BILINEAR}[spec.interpolation]
    ops = [
        T.RandomResizedCrop(image_size, scale=spec.crop_scale, ratio=spec.crop_ratio,
                            interpolation=interp, antialias=True),
        T.RandomHorizontalFlip(spec.flip_p),
        T.RandomApply([T.ColorJitter(spec.brightness, spec.contrast, spec.saturation, spec.hue)],
                      p=spec.jitter_p),
        T.RandomGrayscale(spec.gray_p),
    ]
    if spec.blur_p > 0:
        ops.append(T.RandomApply([T.GaussianBlur(spec.blur_kernel_size(image_size),
                                                 spec.blur_sigma)], p=spec.blur_p))
    if spec.solarize_p > 0:  # PIL images: threshold in uint8 units
        ops.append(T.RandomSolarize(round(spec.solarize_threshold * 255), p=spec.solarize_p))
    ops += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(ops)


class TorchvisionTwoViews:
    """PIL image -> (view1, view2) tensors with torchvision per-image transforms (picklable)."""

    def __init__(self, preset: str, image_size: int, mean: Sequence[float],
                 std: Sequence[float]):
        s1, s2 = VIEW_PRESETS[preset]
        self.t1 = torchvision_view_transform(s1, image_size, mean, std)
        self.t2 = torchvision_view_transform(s2, image_size, mean, std)

    def __call__(self, img):
        return self.t1(img), self.t2(img)
