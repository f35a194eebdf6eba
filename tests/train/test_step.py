"""One training step: it learns on a fixed batch, and a non-finite loss backpropagates nothing."""

import torch

from dimcollapse.devices import resolve_precision
from dimcollapse.losses import infonce
from dimcollapse.models import Encoder, build_backbone, build_projector
from dimcollapse.train.step import SSLModel, apply_update, forward_backward

FP32 = resolve_precision("fp32", torch.device("cpu"))


def _model(projector="mlp"):
    torch.manual_seed(0)
    enc = Encoder(build_backbone("resnet18"), build_projector(projector, 512, hidden_dim=64,
                                                              out_dim=32))
    return SSLModel(enc, torch.nn.Linear(512, 4))


def _views():
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(16, 3, 16, 16, generator=gen)
    return x + 0.05 * torch.randn(x.shape, generator=gen), x, torch.arange(16) % 4


def test_steps_on_a_fixed_batch_drive_the_loss_down():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    v1, v2, y = _views()
    losses, probe = [], []
    for _ in range(10):
        stats, r1, z1 = forward_backward(model, v1, v2, y, loss_fn=infonce, precision=FP32,
                                         optimizer=opt, channels_last=True)
        apply_update(opt, None)
        losses.append(stats.loss)
        probe.append(stats.probe_loss)
        assert stats.count == 16 and not stats.stop
    assert r1.shape == (16, 512) and z1.shape == (16, 32) and not r1.requires_grad
    assert losses[-1] < 0.5 * losses[0], losses
    assert probe[-1] < probe[0], probe


def test_probe_gradient_stops_at_r():
    """The online classifier trains on r.detach(): its loss alone gives the backbone no grad."""
    model = _model("none")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    v1, v2, y = _views()
    forward_backward(model, v1, v2, y, loss_fn=lambda a, b: (a * 0).sum(), precision=FP32,
                     optimizer=opt)
    assert model.classifier.weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0
               for p in model.encoder.backbone.parameters())


def test_nonfinite_loss_is_reported_and_not_backpropagated():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    v1, v2, y = _views()
    stats, _, _ = forward_backward(model, v1, v2, y, loss_fn=lambda a, b: a.sum() * float("nan"),
                                   precision=FP32, optimizer=opt, stop_requested=True)
    assert not stats.finite and stats.stop
    assert all(p.grad is None for p in model.parameters())


def test_bf16_autocast_step_stays_close_to_fp32():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    v1, v2, y = _views()
    bf16 = resolve_precision("bf16", torch.device("cpu"))
    a, _, _ = forward_backward(model, v1, v2, y, loss_fn=infonce, precision=FP32, optimizer=opt)
    b, _, _ = forward_backward(model, v1, v2, y, loss_fn=infonce, precision=bf16, optimizer=opt)
    assert abs(a.loss - b.loss) < 0.05 * abs(a.loss) and a.loss != b.loss
