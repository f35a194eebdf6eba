import pytest
import torch
import torchvision

from dimcollapse.errors import UserError
from dimcollapse.models import BACKBONES, build_backbone


@pytest.mark.parametrize(("name", "dim"), [("resnet18", 512), ("resnet50", 2048)])
def test_out_dim_and_forward_shape(name, dim):
    model = build_backbone(name, stem="cifar", seed=0).eval()
    assert model.out_dim == dim
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, dim)


def _stem(model, x):
    return model.maxpool(model.relu(model.bn1(model.conv1(x))))


def test_stem_output_sizes():
    imagenet = build_backbone("resnet18", stem="imagenet", seed=0).eval()
    cifar = build_backbone("resnet18", stem="cifar", seed=0).eval()
    with torch.no_grad():
        assert _stem(imagenet, torch.randn(1, 3, 224, 224)).shape == (1, 64, 56, 56)
        assert _stem(imagenet, torch.randn(1, 3, 32, 32)).shape == (1, 64, 8, 8)
        assert _stem(cifar, torch.randn(1, 3, 32, 32)).shape == (1, 64, 32, 32)
    assert cifar.conv1.weight.shape == (64, 3, 3, 3)
    assert imagenet.conv1.weight.shape == (64, 3, 7, 7)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_state_dict_keys_are_torchvisions(name):
    reference = getattr(torchvision.models, name)(weights=None)
    expected = {k for k in reference.state_dict() if not k.startswith("fc.")}
    for stem in ("imagenet", "cifar"):
        assert set(build_backbone(name, stem=stem).state_dict()) == expected


def test_plain_torchvision_state_dict_loads_strictly():
    # A torchvision resnet with fc = Identity (the official DirectCLR checkpoint's backbone).
    source = torchvision.models.resnet18(weights=None)
    source.fc = torch.nn.Identity()
    model = build_backbone("resnet18", stem="imagenet")
    model.load_state_dict(source.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    with torch.no_grad():  # equal up to summation order (layer4's 2x2 convs are matmuls)
        torch.testing.assert_close(model.double().eval()(x), source.double().eval()(x),
                                   rtol=1e-12, atol=1e-12)


def test_zero_init_residual():
    model = build_backbone("resnet50")
    blocks = [b for layer in (model.layer1, model.layer2, model.layer3, model.layer4)
              for b in layer]
    assert len(blocks) == 16
    assert all(torch.count_nonzero(b.bn3.weight.detach()) == 0 for b in blocks)
    assert torch.count_nonzero(model.bn1.weight.detach()) == 64


def test_seed_makes_init_reproducible_and_leaves_global_rng():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_backbone("resnet18", seed=7).state_dict()
    assert torch.equal(torch.get_rng_state(), before)
    b = build_backbone("resnet18", seed=7).state_dict()
    c = build_backbone("resnet18", seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_bad_names_are_user_errors():
    with pytest.raises(UserError, match="resnet18"):
        build_backbone("vgg")
    with pytest.raises(UserError, match="cifar"):
        build_backbone("resnet18", stem="tiny")
