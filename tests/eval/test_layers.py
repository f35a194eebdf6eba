"""`dimcollapse spectrum/probe MODEL --layers`: per-layer spectra equal a slow reference (each
image alone through the fp32 model, the layer's map pooled by hand, numpy's eigenvalues), the
same weights give the same spectra through every loader (ours, torchvision:, timm:, hub:), the
hub loaders go through the libraries' real functions with the network stubbed, and bad names
fail with a message listing what is there."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evalfakes import make_labelled_tree, train_tiny, tree_images  # noqa: E402

from dimcollapse.cli import main  # noqa: E402
from dimcollapse.errors import UserError  # noqa: E402
from dimcollapse.eval.layer_models import load_layer_model, read_state_dict  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
FP32 = ["--feature-precision", "fp32", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("layers")
    data = make_labelled_tree(base / "data")
    torch.set_num_threads(1)
    return data, train_tiny(base / "run", data, base / "cache")


def _reference_eigenvalues(module: torch.nn.Module, layer: str, images: torch.Tensor
                           ) -> np.ndarray:
    """Each image alone through `module` (fp32, eval); the layer's output mean-pooled over its
    spatial positions by hand; rows L2-normalised; eigenvalues of the centred covariance / N."""
    found = dict(module.named_modules())[layer]
    rows = []
    def hook(_m, _i, out):
        rows.append(out.detach().double().reshape(out.shape[0], out.shape[1], -1).mean(-1)[0])
    h = found.register_forward_hook(hook)
    with torch.no_grad():
        for x in images:
            module.eval()(x[None])
    h.remove()
    z = torch.stack(rows).numpy()
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    z = z - z.mean(0)
    return np.sort(np.linalg.eigvalsh(z.T @ z / len(z)))[::-1]


def _layers_json(out: Path) -> dict:
    return json.loads((out / "layers.json").read_text())


def _eigs(out: Path, layer: str) -> np.ndarray:
    return np.asarray(json.loads((out / layer / "spectrum.json").read_text())["eigenvalues"])


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=0, atol=2e-6 * b[0])


def test_our_run_default_layers_match_the_slow_reference(run, tmp_path):
    data, run_dir = run
    out = tmp_path / "ours"
    assert main(["spectrum", str(run_dir), "--layers", "default", "--out", str(out), *FP32]) == 0
    rec = _layers_json(out)
    assert [r["layer"] for r in rec["layers"]] == ["layer1", "layer2", "layer3", "layer4", "r",
                                                    "hidden", "z"]
    by = {r["layer"]: r for r in rec["layers"]}
    assert by["hidden"]["module"] == "projector.2" and by["hidden"]["dim"] == 64
    assert by["layer1"]["pooled"] and by["layer1"]["output_shape"][0] == 64
    assert not by["r"]["pooled"] and by["z"]["dim"] == 32
    model = load_layer_model(str(run_dir)).module
    images, _ = tree_images(data, "test")
    for layer, name in (("layer1", "backbone.layer1"), ("layer3", "backbone.layer3"),
                        ("hidden", "projector.2")):
        _close(_eigs(out, layer), _reference_eigenvalues(model, name, images))
    for f in ("layers.md", "layers.csv", "layers.png", "z/spectrum.png"):
        assert (out / f).is_file()
    md = (out / "layers.md").read_text()
    assert "| hidden | `projector.2` |" in md


def test_layer_probe_on_r_equals_the_probe_command(run, tmp_path):
    _, run_dir = run
    out, plain = tmp_path / "lp", tmp_path / "plain"
    assert main(["probe", str(run_dir), "--layers", "r", "--out", str(out), "--precision",
                 "fp32", "--threads", "1", "--quiet"]) == 0
    assert main(["probe", str(run_dir), "--out", str(plain), "--precision", "fp32",
                 "--threads", "1", "--quiet"]) == 0
    ours = _layers_json(out)["layers"][0]["probe"]
    ref = json.loads((plain / "probe.json").read_text())
    assert ours["top1"] == ref["linear_probe"]["top1"]
    assert ours["iterations"] == ref["linear_probe"]["iterations"]
    assert ours["loss"] == pytest.approx(ref["linear_probe"]["loss"], rel=1e-6)
    assert ours["knn_top1"] == ref["knn"]["top1"]


def _torchvision_state(run_dir: Path) -> dict[str, torch.Tensor]:
    ck = torch.load(run_dir / "checkpoint_final.pt", weights_only=True)
    return {**ck["backbone"], "fc.weight": torch.randn(1000, 512), "fc.bias": torch.zeros(1000)}


def test_torchvision_safetensors_and_pth_give_our_spectra(run, tmp_path):
    from safetensors.torch import save_file

    data, run_dir = run
    state = _torchvision_state(run_dir)
    st, pth = tmp_path / "w.safetensors", tmp_path / "w.pth"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, pth)
    ours = tmp_path / "ours"
    main(["spectrum", str(run_dir), "--layers", "layer2,r", "--out", str(ours), *FP32])
    for weights in (st, pth):
        out = tmp_path / weights.suffix[1:]
        assert main(["spectrum", "torchvision:resnet18", "--weights", str(weights),
                     "--layers", "layer2,avgpool", "--dataset", "cifar10", "--data-dir",
                     str(data), "--image-size", "16", "--out", str(out), *FP32]) == 0
        _close(_eigs(out, "layer2"), _eigs(ours, "layer2"))
        _close(_eigs(out, "avgpool"), _eigs(ours, "r"))
        assert _layers_json(out)["model"]["weights"] == str(weights)


def test_torchvision_weights_name_goes_through_torchvision_download(run, tmp_path, monkeypatch):
    """`--weights IMAGENET1K_V1` goes through torchvision's own loader (torch.hub's
    load_state_dict_from_url) to the file the weights enum names, found in torch.hub's cache:
    the network is stubbed to fail, so the weights must come from that cached file."""
    import torchvision

    _, run_dir = run
    state = _torchvision_state(run_dir)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)

    def no_network(*args, **kwargs):
        raise AssertionError(f"tried to download {args[:1]}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    model = load_layer_model("torchvision:resnet18", weights="IMAGENET1K_V1")
    torch.testing.assert_close(model.module.state_dict()["layer1.0.conv1.weight"],
                               state["layer1.0.conv1.weight"])
    assert model.provenance["weights"] == "torchvision weights ResNet18_Weights.IMAGENET1K_V1"
    cached.unlink()
    with pytest.raises(AssertionError, match="tried to download"):
        load_layer_model("torchvision:resnet18", weights="DEFAULT")


def test_timm_file_and_pretrained_through_the_hub_loader(run, tmp_path, monkeypatch):
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    data, _ = run
    torch.manual_seed(0)
    net = timm.create_model("resnet18", pretrained=False)
    weights, head10 = tmp_path / "model.safetensors", tmp_path / "head10.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    ten = timm.create_model("resnet18", pretrained=False, num_classes=10)
    save_file({k: v.contiguous() for k, v in ten.state_dict().items()}, str(head10))
    out = tmp_path / "timm"
    assert main(["spectrum", "timm:resnet18", "--weights", str(weights), "--layers", "layer3",
                 "--dataset", "cifar10", "--data-dir", str(data), "--image-size", "16",
                 "--out", str(out), *FP32]) == 0
    images, _ = tree_images(data, "test")
    _close(_eigs(out, "layer3"), _reference_eigenvalues(net, "layer3", images))
    with pytest.raises(UserError, match="wrong shape: fc.weight, fc.bias"):
        load_layer_model("timm:resnet18", weights=str(head10))
    calls = []

    def fake_download(repo_id, filename=None, **kwargs):
        calls.append((repo_id, filename))
        return str(weights)

    import timm.models._hub as hub

    monkeypatch.setattr(hub, "hf_hub_download", fake_download)
    model = load_layer_model("timm:resnet18", weights="pretrained")
    assert calls and calls[0][0].startswith("timm/resnet18")
    torch.testing.assert_close(model.module.state_dict()["conv1.weight"],
                               net.state_dict()["conv1.weight"])


def test_hub_local_repo_and_bad_layer_names(run, tmp_path):
    data, _ = run
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hubconf.py").write_text(
        "import torch\n"
        "def tiny():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(),\n"
        "                               torch.nn.Conv2d(8, 6, 3))\n")
    out = tmp_path / "hub"
    assert main(["spectrum", f"hub:{repo}:tiny", "--layers", "0,2", "--dataset", "cifar10",
                 "--data-dir", str(data), "--image-size", "16", "--out", str(out), *FP32]) == 0
    model = load_layer_model(f"hub:{repo}:tiny").module
    images, _ = tree_images(data, "test")
    _close(_eigs(out, "2"), _reference_eigenvalues(model, "2", images))
    assert _layers_json(out)["layers"][1]["output_shape"] == [6, 12, 12]
    assert _fails(["spectrum", f"hub:{repo}:tiny", "--layers", "3", "--data-dir", str(data),
                   "--out", str(out), *FP32]) != 0


def _fails(argv: list[str]) -> int:
    """main's exit status (argparse errors exit; UserErrors return 2)."""
    try:
        return main(argv)
    except SystemExit as e:
        return int(e.code or 0)


@pytest.mark.parametrize(("argv", "message"), [
    (["spectrum", "{run}", "--layers", "layer5"],
     "has no layer 'layer5'; did you mean layer4 or layer3? pass one of layer1"),
    (["spectrum", "{run}", "--layers", "r,r"], "names r more than once"),
    (["spectrum", "torchvision:resnet18"], "pass --layers"),
    (["spectrum", "torchvision:resnet81", "--layers", "fc"], "did you mean resnet18"),
    (["spectrum", "{run}", "--layers", "r", "--space", "embedding"], "drop --space"),
    (["spectrum", "{run}", "--weights", "x.pth"], "--weights applies with --layers"),
    (["probe", "{run}", "--layers", "r", "--subvector", "4"], "drop one"),
    (["probe", "{run}", "--layers", "r", "--l2", "0.1", "--select-l2"], "pass one"),
    (["spectrum", "torchvision:resnet18", "--weights", "nope.pth", "--layers", "fc"],
     "no such file"),
    (["spectrum", "timm:resnet18", "--weights", "{bad}", "--layers", "fc"],
     "not a readable .safetensors"),
])
def test_bad_input_is_one_clear_line(run, tmp_path, capsys, argv, message):
    _, run_dir = run
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    argv = [a.format(run=run_dir, bad=bad) for a in argv]
    flags = FP32 if argv[0] == "spectrum" else ["--quiet"]
    assert _fails([*argv, "--out", str(tmp_path / "o"), *flags]) != 0
    assert message in capsys.readouterr().err


def test_the_result_lines_name_each_layer_and_the_files(run, tmp_path, capsys):
    _, run_dir = run
    out = tmp_path / "lines"
    assert main(["spectrum", str(run_dir), "--layers", "layer2,z", "--out", str(out),
                 "--feature-precision", "fp32", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("layer2 (backbone.layer2, d=128): ")
    assert lines[1].startswith("z (projector, d=32): ") and "RankMe" in lines[1]
    assert lines[2] == f"-> {out / 'layers.json'}, {out / 'layers.md'}, {out / 'layers.png'}"


def test_read_state_dict_rejects_non_tensor_files(tmp_path):
    p = tmp_path / "x.pth"
    torch.save({"a": 1}, p)
    with pytest.raises(UserError, match="expected a state_dict"):
        read_state_dict(p)
