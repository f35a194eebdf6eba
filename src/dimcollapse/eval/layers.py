"""Where in a network does it collapse? Per-layer spectra (and probes) of any model.

    model = load_layer_model("runs/mlp")                      # eval.layer_models
    feats = extract_layers(model, ["layer3", "r", "z"], dataset, image_size=32)
    record = measure_layers(model, ["layer3", "r", "z"], spec, probe=True)

`extract_layers` watches the named modules through forward hooks (`monitor.watch`, the same
lookup and pooling as `CollapseMonitor.watch`): a feature map (N, C, H, W) is globally
average-pooled to (N, C), as a ResNet's own avgpool pools layer4 into r. One forward pass per
batch (dataset order, no augmentation, eval mode, bf16 autocast where the hardware has it)
serves every layer. Each layer's rows then get the spectrum of Eqn 1 (float64,
`SpectrumAccumulator`: the same summary as spectrum.json) and, with `probe=True`, the linear
probe and kNN of Table 1's protocol (`eval.probe`, `eval.knn`) on the train split.
"""

from __future__ import annotations

import contextlib
import difflib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from dimcollapse.catalogue import PROBE_L2
from dimcollapse.data import build_dataset
from dimcollapse.errors import UserError
from dimcollapse.eval.features import scatter_rows
from dimcollapse.eval.knn import DEFAULT_K, DEFAULT_TEMPERATURE, knn_classify
from dimcollapse.eval.l2_select import select_l2
from dimcollapse.eval.layer_models import LayerModel
from dimcollapse.eval.probe import linear_probe
from dimcollapse.eval.target import DataSpec
from dimcollapse.monitor.watch import add_output_hook, as_rows, find_module
from dimcollapse.progress import Progress
from dimcollapse.spectrum import COLLAPSE_REL_THRESHOLD, SpectrumAccumulator, SpectrumSummary
from dimcollapse.views import EvalBatches


@dataclass
class LayerFeatures:
    """rows[layer]: float32 (N, C) (pooled when the output was a map); shapes[layer]: one
    sample's output shape before pooling, e.g. (256, 2, 2); targets: int64 (N,)."""

    rows: dict[str, Tensor]
    shapes: dict[str, tuple[int, ...]]
    targets: Tensor
    seconds: float = 0.0


def check_layers(model: LayerModel, layers: Sequence[str]) -> list[str]:
    """The layers, each resolvable to a module; UserError for none, duplicates or a bad name."""
    if not layers:
        raise UserError(f"{model.name}: pass --layers NAME,NAME,... (named_modules() names"
                        + (f" or {', '.join(model.aliases)}" if model.aliases else "") + ")")
    seen = [layer for i, layer in enumerate(layers) if layer in layers[:i]]
    if seen:
        raise UserError(f"--layers names {', '.join(sorted(set(seen)))} more than once")
    for layer in layers:
        if layer in model.aliases:
            continue
        try:
            find_module(model.module, layer, what="--layers")  # raises, listing the names
        except UserError as err:
            if not model.aliases:
                raise
            close = difflib.get_close_matches(layer, list(model.aliases), n=2)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise UserError(f"--layers: {model.name} has no layer {layer!r}; {hint}pass one of "
                            f"{', '.join(model.aliases)} or a module name ({err})") from None
    return list(layers)


@torch.no_grad()
def extract_layers(model: LayerModel, layers: Sequence[str], dataset, *, image_size: int,
                   batch_size: int = 256, precision=None, device: str | torch.device = "cpu",
                   channels_last: bool = True, num_workers: int = 0, progress: bool = False,
                   desc: str = "layer features") -> LayerFeatures:
    """Every named layer's output on every image of `dataset`, in dataset order.

    precision: a `devices.Precision` (autocast), None for fp32; rows are stored as float32.
    Raises UserError when a layer's output is not finite or never produced (a module the
    forward pass does not call).
    """
    layers = check_layers(model, layers)
    device = torch.device(device)
    module = model.module.eval().to(device)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    n = len(dataset)
    rows: dict[str, Tensor] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    current: dict[str, Any] = {}

    def keep(layer: str) -> Callable[[Any], None]:
        def callback(output: Any) -> None:
            first = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(first, Tensor):
                shapes.setdefault(layer, tuple(first.shape[1:]))
            current[layer] = as_rows(layer, output).float().cpu()
        return callback

    handles = [add_output_hook(find_module(module, model.module_name(layer)), keep(layer))
               for layer in layers]
    batches = EvalBatches(dataset, batch_size=batch_size, image_size=image_size, device=device,
                          num_workers=num_workers)
    bar = Progress(n, prefix=f"dimcollapse: {desc}", unit="image", desc=desc, leave=False,
                   quiet=not progress)
    autocast = precision.autocast() if precision is not None else contextlib.nullcontext()
    t0 = time.perf_counter()
    try:
        for index, images, _ in batches:
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            current.clear()
            with autocast:
                module(images)
            for layer in layers:
                if layer not in current:
                    raise UserError(f"layer {layer!r} ({model.module_name(layer)}) produced no "
                                    "output: the forward pass never calls it; pick another")
                scatter_rows(rows, layer, index, current[layer], n)
            bar.update(len(index))
    finally:
        bar.close()
        for h in handles:
            h.remove()
    for layer, x in rows.items():
        if not torch.isfinite(x).all():
            raise UserError(f"layer {layer!r}: {int((~torch.isfinite(x)).any(1).sum())} of {n} "
                            "rows contain NaN/Inf: the weights are not finite (a diverged run?)")
    return LayerFeatures(rows, shapes, dataset.targets.clone(), time.perf_counter() - t0)


def layer_spectrum(x: Tensor, *, normalize: bool = True, center: bool = True, ddof: int = 0,
                   threshold: float = COLLAPSE_REL_THRESHOLD, raw_samples: int | None = 25_600,
                   precision: str = "float64") -> SpectrumSummary:
    """The spectrum.json summary (Eqn 1, float64) of one layer's (N, C) rows."""
    acc = SpectrumAccumulator(x.shape[1], normalize=normalize, center=center,
                              precision=precision, raw_max_samples=raw_samples)
    for chunk in x.split(8192):
        acc.update(chunk.numpy())
    return acc.summary(ddof=ddof, rel_threshold=threshold)


@dataclass
class LayerResult:
    """One layer's measurements: `spectrum` always, `probe` with `measure_layers(probe=True)`."""

    layer: str
    module: str
    output_shape: tuple[int, ...]
    spectrum: SpectrumSummary = field(repr=False)
    probe: dict[str, Any] | None = None

    @property
    def dim(self) -> int:
        return self.spectrum.dim

    def row(self) -> dict[str, Any]:
        """The layer's line of layers.json (the full spectrum is in its own spectrum.json)."""
        s = self.spectrum
        return {"layer": self.layer, "module": self.module,
                "output_shape": list(self.output_shape), "pooled": len(self.output_shape) > 1,
                "dim": s.dim, "n": s.n, "collapsed_dims": s.collapsed_dims,
                "threshold": s.threshold, "rankme": s.rankme,
                "effective_rank": s.effective_rank, "alpha_req": s.alpha_req,
                "collapse": s.collapse, "spectrum_file": f"{self.layer}/spectrum.json",
                "probe": self.probe}


def probe_layer(xtr: Tensor, ytr: Tensor, xte: Tensor, yte: Tensor, *, l2: float | None,
                select: bool, knn: bool) -> dict[str, Any]:
    """Table 1's protocol on one layer: L-BFGS linear probe (+ kNN); accuracies in percent."""
    num_classes = int(max(ytr.max(), yte.max())) + 1
    if select:
        l2_used, source = select_l2(xtr, ytr, num_classes=num_classes).l2, "select_l2"
    else:
        l2_used, source = (PROBE_L2 if l2 is None else l2), ("default" if l2 is None else "--l2")
    res = linear_probe(xtr, ytr, xte, yte, l2=l2_used, num_classes=num_classes)
    out: dict[str, Any] = {"top1": res.top1, "top5": res.top5, "l2": res.l2,
                           "l2_source": source, "converged": res.converged, "loss": res.loss,
                           "iterations": res.iterations, "n_train": res.n_train,
                           "n_test": res.n_test}
    if knn:
        k = knn_classify(xtr, ytr, xte, yte, k=DEFAULT_K, temperature=DEFAULT_TEMPERATURE,
                         num_classes=num_classes)
        out.update(knn_top1=k.top1, knn_k=k.k, knn_temperature=k.temperature)
    return out


def measure_layers(model: LayerModel, layers: Sequence[str], data: DataSpec, *,
                   probe: bool = False, l2: float | None = None, select: bool = False,
                   knn: bool = True, precision=None, device: str | torch.device = "cpu",
                   batch_size: int = 256, normalize: bool = True, center: bool = True,
                   ddof: int = 0, threshold: float = COLLAPSE_REL_THRESHOLD,
                   raw_samples: int | None = 25_600, progress: bool = False,
                   log: Callable[[str], None] = lambda m: None) -> list[LayerResult]:
    """Spectra of every layer on the held-out split (+ probes fitted on the train split)."""
    layers = check_layers(model, layers)
    if l2 is not None and select:  # before any extraction
        raise UserError("--l2 and --select-l2 both set the probe's regularisation: pass one")

    def split(name: str) -> LayerFeatures:
        ds = build_dataset(data.dataset, data.data_dir,
                           data.test_split if name == "test" else name,
                           subset=data.train_subset if name == "train" else None,
                           subset_seed=data.subset_seed, cache_dir=data.cache_dir,
                           progress=progress)
        if ds.note and name == "test":
            log(ds.note)  # e.g. "DIR is not cifar10: using it as imagefolder, normalised ..."
        feats = extract_layers(model, layers, ds, image_size=data.image_size,
                               batch_size=batch_size, precision=precision, device=device,
                               num_workers=data.num_workers, progress=progress,
                               desc=f"{name} layer features")
        log(f"{name}: {len(ds)} images x {len(layers)} layers in {feats.seconds:.1f} s")
        return feats

    test = split("test")
    train = split("train") if probe else None
    results = []
    for layer in layers:
        s = layer_spectrum(test.rows[layer], normalize=normalize, center=center, ddof=ddof,
                           threshold=threshold, raw_samples=raw_samples)
        p = None
        if train is not None:
            log(f"probe on {layer} ({test.rows[layer].shape[1]} dims)")
            p = probe_layer(train.rows[layer], train.targets, test.rows[layer], test.targets,
                            l2=l2, select=select, knn=knn)
        results.append(LayerResult(layer, model.module_name(layer), test.shapes[layer], s, p))
    return results
