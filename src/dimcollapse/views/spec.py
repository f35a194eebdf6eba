"""ViewSpec: the distribution of one augmented view (every parameter, with its unit)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ViewSpec:
    """One view's augmentation distribution, in torchvision's terms (SPEC §4, Appendix D).

    Order of application: random resized crop -> horizontal flip -> colour jitter (brightness,
    contrast, saturation, hue in a per-sample random order, applied with prob jitter_p) ->
    grayscale -> Gaussian blur -> solarisation -> normalisation.
    """

    crop_scale: tuple[float, float] = (0.08, 1.0)  # area fraction of the source image
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect ratio w/h, sampled log-uniformly
    interpolation: str = "bicubic"  # bicubic | bilinear, antialiased like torchvision
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4  # factor ~ U[1 - b, 1 + b]
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1  # shift ~ U[-h, h] in turns of the colour wheel
    gray_p: float = 0.2
    blur_p: float = 1.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)  # pixels, ~ U[lo, hi]
    blur_kernel_frac: float = 0.1  # kernel size = odd number nearest above frac * image_size
    solarize_p: float = 0.0
    solarize_threshold: float = 128 / 255  # pixels >= threshold are inverted (PIL's 128)

    def __post_init__(self):
        if self.interpolation not in ("bicubic", "bilinear"):
            raise ValueError(f"interpolation must be bicubic or bilinear, got {self.interpolation}")
        for p in ("flip_p", "jitter_p", "gray_p", "blur_p", "solarize_p"):
            if not 0.0 <= getattr(self, p) <= 1.0:
                raise ValueError(f"{p} must be a probability, got {getattr(self, p)}")
        if not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")
        if not 0 <= self.hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {self.hue}")

    def blur_kernel_size(self, image_size: int) -> int:
        """Kernel taps of the blur: 23 at 224 px (SimCLR's 10 % of the image), always odd, >= 3."""
        k = int(self.blur_kernel_frac * image_size)
        return max(3, k + 1 if k % 2 == 0 else k)
