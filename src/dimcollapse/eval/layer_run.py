"""`dimcollapse spectrum MODEL --layers ...` and `dimcollapse probe MODEL --layers ...`, as one
function of plain values: load the model (`eval.layer_models`), measure its layers
(`eval.layers`), write the report (`report.layers_report`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from dimcollapse.devices import resolve_device, resolve_precision
from dimcollapse.errors import UserError
from dimcollapse.eval.layer_models import load_layer_model
from dimcollapse.eval.layers import LayerResult, measure_layers
from dimcollapse.eval.target import data_spec_for
from dimcollapse.eval_options import EvalOptions
from dimcollapse.report.layers_report import write_layers_report
from dimcollapse.runinfo import run_metadata

LAYERS_DIR = "layers"  # default output folder inside a run folder


def parse_layers(text: str | None) -> list[str] | None:
    """"layer1,layer2, r" -> ["layer1", "layer2", "r"]; None stays None (the defaults)."""
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError("--layers is empty: pass NAME,NAME,... (module names or aliases)")
    return names


def run_layers(spec: str, layers: Sequence[str] | None, options: EvalOptions, *,
               out: str | None = None, weights: str | None = None, probe: bool = False,
               l2: float | None = None, select_l2: bool = False, knn: bool = True,
               train_subset: int | None = None, spectrum_args: dict[str, Any] | None = None,
               log: Callable[[str], None] = lambda m: None
               ) -> tuple[list[LayerResult], dict[str, Path]]:
    """Measure `layers` of the model `spec` and write OUT/layers.{json,md,csv,png}.

    spectrum_args: `eval.layers.measure_layers`'s normalize/center/ddof/threshold/raw_samples.
    """
    o = options
    if o.threads is not None:
        if o.threads < 1:
            raise UserError("--threads must be >= 1")
        torch.set_num_threads(o.threads)
    model = load_layer_model(spec, weights=weights, backbone=o.backbone, stem=o.stem,
                             allow_unsafe=o.unsafe_load)
    names = list(layers) if layers is not None else list(model.default_layers)
    if not names:
        raise UserError(f"{spec}: pass --layers NAME,NAME,... (its named_modules() names, e.g. "
                        "layer1,layer4,avgpool for a torchvision ResNet)")
    dataset = o.dataset or (None if model.config else "imagefolder")
    data = data_spec_for(model.config, spec, dataset=dataset, data_dir=o.data_dir,
                         image_size=o.image_size, cache_dir=o.cache_dir,
                         train_subset=train_subset, num_workers=o.workers)
    if out is None:
        run_dir = model.provenance.get("checkpoint", {}).get("run_dir")
        if model.checkpoint_path is None:
            raise UserError(f"{spec}: pass --out DIR for the per-layer report")
        out = str(Path(run_dir) / LAYERS_DIR if run_dir else
                  model.checkpoint_path.parent / LAYERS_DIR)
    default = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    device = resolve_device(o.device, default)
    precision = resolve_precision(o.feature_precision, device)
    log(f"{model.name}: {len(names)} layers ({', '.join(names)}) on {data.dataset} "
        f"{data.test_split}{' + train (probe)' if probe else ''}, {precision.name} on {device}")
    results = measure_layers(model, names, data, probe=probe, l2=l2, select=select_l2, knn=knn,
                             precision=precision, device=device, batch_size=o.batch_size,
                             progress=not o.quiet, log=log, **(spectrum_args or {}))
    header = {"model": model.describe(), "data": data.describe(), "precision": precision.name,
              "probe": probe,
              "data_text": f"{data.dataset} at {data.image_size} px, spectra on the "
                           f"{data.test_split} split" + (", probes fitted on train" if probe
                                                         else "")}
    title = f"Per-layer spectra of {model.name}"
    paths = write_layers_report(results, out, header=header, title=title,
                                metadata=run_metadata())
    return results, paths


def result_lines(results: Sequence[LayerResult], paths: dict[str, Path]) -> list[str]:
    """What the commands print: one line per layer, then the files written."""
    lines = []
    for r in results:
        s = r.spectrum
        rankme = "n/a" if s.rankme is None else f"{s.rankme:.1f}"
        probe = "" if r.probe is None else f", probe top-1 {r.probe['top1']:.2f}%"
        of = f" of the {s.max_rank} measurable" if s.unmeasured_dims else ""
        lines.append(f"{r.layer} ({r.module}, d={s.dim}): {s.collapsed_dims}{of} collapsed "
                     f"(< {s.threshold:g} x max), RankMe {rankme}, collapse: {s.collapse}{probe}")
    lines.append(f"-> {paths['json']}, {paths['md']}, {paths['png']}")
    return lines
