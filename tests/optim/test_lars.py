import io
import math

import pytest
import torch
from torch import nn

from dimcollapse.optim import LARS, build_optimizer, param_groups, set_lr


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)
        self.proj = nn.Linear(2, 2, bias=False)


def _model(dtype=torch.float64):
    torch.manual_seed(0)
    model = Tiny().to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    return model


def _targets(model):
    g = torch.Generator().manual_seed(1)
    return {n: torch.randn(p.shape, generator=g, dtype=p.dtype) for n, p in
            model.named_parameters()}


def _grads_from_loss(model, targets):
    """loss = sum_k 0.5 * ||w_k^2 - c_k||^2 summed over elements, so the gradient
    2 w (w^2 - c) is not parallel to w and changes with w."""
    loss = sum(0.5 * ((p * p - targets[n]) ** 2).sum() for n, p in model.named_parameters())
    model.zero_grad()
    loss.backward()


def slow_lars(weights, targets, excluded, lrs, wd, momentum, eta):
    """The update documented in dimcollapse/optim/lars.py, element by element in Python floats:
    d = g + wd w; q = eta ||w|| / ||d|| (1 if a norm is 0); v = m v + q d; w -= lr v.
    Excluded tensors: d = g, q = 1."""
    w = {n: list(v) for n, v in weights.items()}
    vel = {n: [0.0] * len(v) for n, v in w.items()}
    for lr in lrs:
        for n in w:
            c = targets[n]
            g = [2 * x * (x * x - ci) for x, ci in zip(w[n], c, strict=True)]
            if excluded[n]:
                d, q = g, 1.0
            else:
                d = [gi + wd * x for gi, x in zip(g, w[n], strict=True)]
                wn = math.sqrt(sum(x * x for x in w[n]))
                dn = math.sqrt(sum(x * x for x in d))
                q = eta * wn / dn if wn > 0 and dn > 0 else 1.0
            vel[n] = [momentum * v + q * di for v, di in zip(vel[n], d, strict=True)]
            w[n] = [x - lr * v for x, v in zip(w[n], vel[n], strict=True)]
    return w


def test_lars_matches_slow_reference_over_steps_with_changing_lr():
    model = _model()
    targets = _targets(model)
    weights = {n: p.detach().flatten().tolist() for n, p in model.named_parameters()}
    flat_targets = {n: t.flatten().tolist() for n, t in targets.items()}
    groups = param_groups(model, weight_decay=0.05)
    excluded = {n: g["lars_exclude"] for g in groups for n in g["names"]}
    assert excluded == {"fc.weight": False, "fc.bias": True, "bn.weight": True,
                        "bn.bias": True, "proj.weight": False}
    lrs = [0.5, 2.0, 1.0, 0.25]
    opt = LARS(groups, lr=0.0, weight_decay=0.05, momentum=0.9, eta=0.02)
    for lr in lrs:
        set_lr(opt, lr)
        _grads_from_loss(model, targets)
        opt.step()
    ref = slow_lars(weights, flat_targets, excluded, lrs, 0.05, 0.9, 0.02)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach().flatten(),
                                   torch.tensor(ref[n], dtype=torch.float64),
                                   atol=1e-12, rtol=1e-12)


def test_lars_equals_you_et_al_when_gradient_is_parallel_to_weights():
    # You, Gitman & Ginsburg (2017), Alg. 1: lambda = eta ||w|| / (||g|| + beta ||w||),
    # v <- m v + gamma * lambda * (g + beta w), w <- w - v. With g = c w (parallel) and a
    # constant gamma it coincides with the implemented form. Loss 0.5 c ||w||^2.
    c, beta, eta, m, gamma = 3.0, 0.1, 0.01, 0.9, 0.7
    # 2-D, so the default by-shape rule adapts it
    w = torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64, requires_grad=True)
    opt = LARS([w], lr=gamma, weight_decay=beta, momentum=m, eta=eta)
    ref_w, ref_v = [1.0, -2.0, 0.5], [0.0, 0.0, 0.0]
    for _ in range(5):
        g = [c * x for x in ref_w]
        wn = math.sqrt(sum(x * x for x in ref_w))
        gn = math.sqrt(sum(x * x for x in g))
        lam = eta * wn / (gn + beta * wn)
        ref_v = [m * v + gamma * lam * (gi + beta * x) for v, gi, x in
                 zip(ref_v, g, ref_w, strict=True)]
        ref_w = [x - v for x, v in zip(ref_w, ref_v, strict=True)]
        opt.zero_grad()
        (0.5 * c * (w * w).sum()).backward()
        opt.step()
    torch.testing.assert_close(w.detach()[0], torch.tensor(ref_w, dtype=torch.float64),
                               atol=1e-14, rtol=1e-12)


@pytest.mark.parametrize("how", ["groups", "plain-parameters", "reversed"])
def test_biases_and_norms_get_no_weight_decay_by_name(how):
    model = _model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    if how == "groups":
        opt = build_optimizer("lars", param_groups(model, weight_decay=0.5), lr=1.0,
                              weight_decay=0.5)
    elif how == "plain-parameters":
        opt = LARS(model.parameters(), lr=1.0, weight_decay=0.5)  # by-shape default
    else:  # the order of parameters must not matter
        opt = LARS(list(model.parameters())[::-1], lr=1.0, weight_decay=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)  # only weight decay acts
    opt.step()
    for n, p in model.named_parameters():
        if n in ("fc.bias", "bn.weight", "bn.bias"):
            assert torch.equal(p, before[n]), n
        else:
            # d = wd w, q = eta ||w|| / ||wd w|| = eta / wd: w <- w - lr * eta * w
            torch.testing.assert_close(p.detach(), before[n] * (1 - 1.0 * 0.001))


def test_sgd_and_adamw_respect_the_groups():
    for name in ("sgd", "adamw"):
        model = _model()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        opt = build_optimizer(name, param_groups(model, weight_decay=0.1), lr=0.5,
                              weight_decay=0.1, momentum=0.9)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        opt.step()
        for n, p in model.named_parameters():
            expected = before[n] if p.ndim == 1 else before[n] * (1 - 0.5 * 0.1)
            torch.testing.assert_close(p.detach(), expected, msg=f"{name} {n}")


def test_state_dict_round_trip_continues_identically():
    model, twin = _model(), _model()
    targets = _targets(model)
    opt = LARS(param_groups(model, weight_decay=0.01), lr=0.3, weight_decay=0.01)
    for _ in range(2):
        _grads_from_loss(model, targets)
        opt.step()
    twin.load_state_dict(model.state_dict())
    opt2 = LARS(param_groups(twin, weight_decay=0.01), lr=0.3, weight_decay=0.01)
    buffer = io.BytesIO()  # through bytes, as a checkpoint (a live state_dict shares tensors)
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    opt2.load_state_dict(torch.load(buffer))
    for m, o in ((model, opt), (twin, opt2)):
        _grads_from_loss(m, targets)
        o.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)


def test_param_groups_from_named_modules_dedupes_and_skips_frozen():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight  # shared
    b.bias.requires_grad_(False)
    groups = param_groups({"backbone": a, "projector": b}, weight_decay=1e-6)
    names = [n for g in groups for n in g["names"]]
    assert names == ["backbone.weight", "backbone.bias"]
    assert [g["weight_decay"] for g in groups] == [1e-6, 0.0]


def test_build_optimizer_passes_eta_to_lars():
    opt = build_optimizer("lars", [nn.Parameter(torch.zeros(2, 2))], lr=1.0, weight_decay=0.0,
                          eta=0.02)
    assert isinstance(opt, LARS) and opt.param_groups[0]["eta"] == 0.02


def test_unknown_optimizer_is_a_user_error():
    from dimcollapse.errors import UserError

    with pytest.raises(UserError, match="lars, sgd, adamw"):
        build_optimizer("adam", [nn.Parameter(torch.zeros(1))], lr=1.0, weight_decay=0.0)
