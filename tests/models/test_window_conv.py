"""WindowConv2d: values and gradients equal nn.Conv2d's; only <= 2x2 inputs take the matmul path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dimcollapse.models.backbones import build_backbone
from dimcollapse.models.window_conv import WindowConv2d, use_plain_convs, use_window_convs

# (in, out, kernel, stride, padding, bias, input size): ResNet's layer3/4 convs at 32 px (1x1
# and 2x2 inputs, the stride-2 entry conv and downsample) and shapes that keep nn.Conv2d.
CASES = [
    (6, 5, 3, 1, 1, False, (1, 1)),
    (6, 5, 3, 2, 1, False, (2, 2)),
    (6, 5, 1, 2, 0, True, (2, 2)),
    (6, 5, 3, 1, 0, True, (3, 3)),  # 9 pixels: nn.Conv2d
    (6, 5, (3, 1), (2, 1), (1, 0), False, (2, 1)),
    (6, 5, 3, 1, 1, False, (2, 2)),  # layer3's 2x2 -> 2x2
    (6, 5, 3, 1, 1, True, (1, 2)),
    (6, 5, 3, 2, 1, True, (4, 4)),  # 4x4 input: nn.Conv2d
    (6, 5, 1, 1, 0, False, (3, 3)),  # 9 pixels: nn.Conv2d
]


def _pair(conv_args, size, *, channels_last=False):
    cin, cout, k, s, p, bias, _ = conv_args
    g = torch.Generator().manual_seed(0)
    ref = nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=bias).double()
    with torch.no_grad():
        for t in ref.parameters():
            t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64))
    fast = use_window_convs(nn.Sequential(nn.Conv2d(cin, cout, k, stride=s, padding=p,
                                                    bias=bias).double()))[0]
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(4, cin, *size, generator=g, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return ref, fast, x


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_values_and_gradients_equal_conv2d(case, channels_last):
    ref, fast, x = _pair(case, case[-1], channels_last=channels_last)
    assert isinstance(fast, WindowConv2d)
    xr, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    yr, yf = ref(xr), fast(xf)
    torch.testing.assert_close(yf, yr, rtol=0, atol=1e-12)
    g = torch.randn(yr.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    yr.backward(g)
    yf.backward(g)
    torch.testing.assert_close(xf.grad, xr.grad, rtol=0, atol=1e-12)
    for a, b in zip(fast.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-12)


def test_only_inputs_of_at_most_four_pixels_take_the_matmul_path(monkeypatch):
    calls = []
    real = F.linear
    monkeypatch.setattr(F, "linear", lambda *a, **k: calls.append(1) or real(*a, **k))
    for case in CASES:
        ref, fast, x = _pair(case, case[-1])
        calls.clear()
        fast(x)
        h, w = case[-1]
        assert len(calls) == (ref(x).shape[2] * ref(x).shape[3] if h * w <= 4 else 0), case


def test_resnet18_at_32px_equals_plain_convs_and_keeps_its_keys():
    model = build_backbone("resnet18", stem="imagenet", seed=0).double().eval()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(type(m) is WindowConv2d for m in convs)
    plain = use_plain_convs(build_backbone("resnet18", stem="imagenet", seed=0).double().eval())
    assert not any(isinstance(m, WindowConv2d) for m in plain.modules())
    assert list(model.state_dict()) == list(plain.state_dict())
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(model(x), plain(x), rtol=1e-10, atol=1e-12)
