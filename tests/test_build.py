"""build.py: config -> objects, with the config's values reaching the constructors."""

import pytest
import torch

from dimcollapse import build
from dimcollapse.config import apply_overrides, default_config, preset_config, resolve
from dimcollapse.errors import UserError
from dimcollapse.losses import infonce, ntxent


def _cfg(**over):
    return resolve(apply_overrides(preset_config("cpu"), over))


def test_schedule_length_from_epochs_or_steps_and_warmup():
    paper = resolve(default_config())
    assert build.schedule_steps(paper, 312) == (100 * 312, 10 * 312)  # Appendix D
    assert build.schedule_steps(_cfg(), 195) == (900, 30)  # cpu preset: steps, warm-up steps
    cfg = _cfg(**{"loop.max_steps": None, "loop.epochs": 3, "optim.warmup_steps": None,
                  "optim.warmup_epochs": 0.5})
    assert build.schedule_steps(cfg, 195) == (585, 97)
    assert build.schedule_steps(_cfg(**{"loop.max_steps": 10}), 195) == (10, 10)  # capped


def test_schedule_follows_the_config():
    cfg = _cfg(**{"optim.lr": 2.0, "optim.final_lr_ratio": 0.5})
    lr = build.build_schedule(cfg, total_steps=10, warmup_steps=2)
    assert [lr(0), lr(1), lr(2), lr(10)] == pytest.approx([0.0, 1.0, 2.0, 1.0])


def test_encoder_and_d0_check():
    enc = build.build_encoder(_cfg(**{"model.projector": "directclr", "model.d0": 90}))
    r, z = enc(torch.randn(2, 3, 32, 32))
    assert r.shape == (2, 512) and z.shape == (2, 90)
    assert torch.equal(z, r[:, :90])
    with pytest.raises(UserError, match="--d0 513 exceeds the representation size 512"):
        build.build_encoder(_cfg(**{"model.projector": "directclr", "model.d0": 513}))
    enc = build.build_encoder(_cfg(**{"model.hidden_dim": 64, "model.out_dim": 16}))
    assert enc(torch.randn(2, 3, 32, 32))[1].shape == (2, 16)


def test_loss_gets_name_and_temperature():
    z1, z2 = torch.randn(8, 5), torch.randn(8, 5)
    fn = build.build_loss(_cfg(**{"loss.temperature": 0.5}))
    assert fn(z1, z2).item() == pytest.approx(infonce(z1, z2, temperature=0.5).item())
    fn = build.build_loss(_cfg(**{"loss.name": "ntxent"}))
    assert fn(z1, z2).item() == pytest.approx(ntxent(z1, z2, temperature=0.1).item())
    with pytest.raises(UserError, match="unknown loss"):
        build.build_loss(_cfg(**{"loss.name": "byol"}))


def test_optimizer_groups_decay_and_lars_settings():
    cfg = _cfg(**{"optim.name": "lars", "optim.eta": 0.02, "optim.weight_decay": 1e-4})
    net = {"backbone": torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)),
           "classifier": torch.nn.Linear(4, 2)}
    opt = build.build_optimizer(cfg, net)
    assert type(opt).__name__ == "LARS"
    assert all(g["eta"] == 0.02 and g["lr"] == cfg.optim.lr for g in opt.param_groups)
    decayed = {n for g in opt.param_groups if g["weight_decay"] == 1e-4 for n in g["names"]}
    assert decayed == {"backbone.0.weight", "classifier.weight"}  # biases and BN excluded
    assert isinstance(build.build_optimizer(_cfg(), net), torch.optim.SGD)


def test_classifier_needs_two_classes():
    assert build.build_classifier(512, 10).weight.shape == (10, 512)
    with pytest.raises(UserError, match="at least 2 classes"):
        build.build_classifier(512, 1)


def test_dataset_needs_a_folder():
    with pytest.raises(UserError, match="--data-dir"):
        build.build_train_dataset(_cfg())


def test_online_probe_gets_its_own_lr_scale():
    from dimcollapse.optim import set_lr

    cfg = _cfg(**{"optim.probe_lr_scale": 0.25})
    net = {"backbone": torch.nn.Linear(3, 4), "classifier": torch.nn.Linear(4, 2)}
    opt = build.build_optimizer(cfg, net)
    set_lr(opt, 2.0)
    lrs = {n: g["lr"] for g in opt.param_groups for n in g["names"]}
    assert lrs == {"backbone.weight": 2.0, "backbone.bias": 2.0,
                   "classifier.weight": 0.5, "classifier.bias": 0.5}
