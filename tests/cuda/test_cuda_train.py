"""`dimcollapse.train.train` on the GPU: the loop's own CUDA path (cudnn.benchmark, bf16
autocast, the dataset resident on the GPU, checkpoints of CUDA tensors) runs, and keeping the
images on the GPU changes nothing but speed: the first step's loss equals that of a run that
copies each batch from host memory, to 5e-3 (the views are bit-identical, test_cuda_views.py;
the loop turns cudnn.benchmark on, which may pick other bf16 convolution algorithms)."""

import json

import pytest
import torch
from trainhelpers import make_tree, tiny_overrides

from dimcollapse.config import apply_overrides, preset_config
from dimcollapse.train import train


def _run(tmp_path, name, data, on_device):
    over = tiny_overrides(data, tmp_path / "cache", **{
        "model.stem": "cifar", "loop.precision": "bf16", "loop.max_steps": 4,
        "loop.device": "auto", "data.resident_on_device": on_device})
    result = train(apply_overrides(preset_config("cifar"), over), tmp_path / name, quiet=True)
    lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
    return result, [json.loads(x) for x in lines]


def test_train_on_the_gpu_with_the_dataset_resident_there(tmp_path, accel):
    data = make_tree(tmp_path / "data")
    res, recs = _run(tmp_path, "gpu", data, True)
    assert res.status == "complete" and res.step == 4
    run = json.loads((tmp_path / "gpu" / "run.json").read_text())
    assert run["device"].startswith(accel.type) and run["precision"] == "bf16"
    assert [r["step"] for r in recs] == [1, 2, 3, 4]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in recs)
    ckpt = torch.load(res.checkpoint, weights_only=True, map_location="cpu")
    assert ckpt["step"] == 4 and ckpt["config"]["data"]["resident_on_device"] is True
    _, host = _run(tmp_path, "host", data, False)
    assert recs[0]["loss"] == pytest.approx(host[0]["loss"], rel=5e-3)
