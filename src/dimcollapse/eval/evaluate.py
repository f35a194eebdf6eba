"""Evaluate one checkpoint: linear probe + kNN on r (probe.json), spectra of r or z (Fig 2, 7b, 9).

    ev = Evaluator(resolve_target("runs/x"), data_spec(...), cache_dir="runs/x/features")
    record = ev.probe()                         # a ProbeRecord: probe.json (eval/records.py)
    summary = ev.spectrum("representation")     # a SpectrumSummary: `dimcollapse spectrum RUN`

Features come from `eval.features.cached_features` (extracted once per split, cached).
The file names below are shared by the CLI, `compare` and `reproduce`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from dimcollapse.data import ImageDataset, build_dataset
from dimcollapse.devices import resolve_device, resolve_precision
from dimcollapse.errors import UserError
from dimcollapse.eval.features import DEFAULT_BATCH_SIZE, Features, cached_features, file_digest
from dimcollapse.eval.knn import DEFAULT_K, DEFAULT_TEMPERATURE, knn_classify
from dimcollapse.eval.l2_select import select_l2
from dimcollapse.eval.probe import DEFAULT_L2, linear_probe
from dimcollapse.eval.records import FeatureInfo, FeatureProvenance, ProbeRecord
from dimcollapse.eval.target import DataSpec, EvalTarget
from dimcollapse.spectrum import COLLAPSE_REL_THRESHOLD, SpectrumAccumulator, SpectrumSummary

PROBE_FILE = "probe.json"
FEATURES_DIR = "features"
SPACES = {"representation": "r", "embedding": "z"}


def probe_file(subvector: int | None = None) -> str:
    """probe.json for the whole of r; probe_subvector<d0>.json for r[:, :d0] (Appendix F)."""
    return PROBE_FILE if subvector is None else f"probe_subvector{subvector}.json"


def spectrum_dir(space: str) -> str:
    """Folder (inside a run folder) of `dimcollapse spectrum RUN --space SPACE`."""
    if space not in SPACES:
        raise UserError(f"unknown space {space!r}: choose representation or embedding")
    return f"spectrum_{space}"


class Evaluator:
    """Features, probes and spectra of one target on one dataset, sharing one feature cache.

    cache_dir: folder of the feature cache (None: no cache). precision: "auto" (bf16 autocast
    where the CPU/GPU has it), "bf16" or "fp32"; features are stored as float32 either way.
    """

    def __init__(self, target: EvalTarget, data: DataSpec, *,
                 cache_dir: str | os.PathLike | None, precision: str = "auto",
                 batch_size: int = DEFAULT_BATCH_SIZE, device: str = "auto",
                 progress: bool = False, log: Callable[[str], None] | None = None):
        self.target, self.data = target, data
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        default = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
        self.device = resolve_device(device, default)
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = batch_size
        self.progress = progress
        self.progress_interval_s: float | None = None  # plain-line interval off a terminal
        self.log = log or (lambda msg: None)
        self._datasets: dict[str, ImageDataset] = {}
        self._features: dict[tuple[str, tuple[str, ...]], Features] = {}
        self._digest: str | None = None

    # -- data and features -----------------------------------------------------------------
    def dataset(self, split: str) -> ImageDataset:
        if split not in self._datasets:
            d = self.data
            subset = d.train_subset if split == "train" else None
            name = d.test_split if split == "test" else split
            self._datasets[split] = build_dataset(
                d.dataset, d.data_dir, name, subset=subset, subset_seed=d.subset_seed,
                cache_dir=d.cache_dir, progress=self.progress)
            note = self._datasets[split].note
            if note and split == "train":
                self.log(note)
        return self._datasets[split]

    def features(self, split: str, spaces: tuple[str, ...] = ("r",)) -> Features:
        """Frozen features of `split` ("train" | "test"), from the cache when possible."""
        key = (split, spaces)
        if key not in self._features and (split, ("r", "z")) in self._features:
            return self._features[(split, ("r", "z"))]  # r of an (r, z) extraction
        if key not in self._features:
            if self._digest is None:
                self._digest = file_digest(self.target.checkpoint_path)
            feats = cached_features(
                self.target.loaded, self.dataset(split), image_size=self.data.image_size,
                spaces=spaces, cache_dir=self.cache_dir, precision=self.precision,
                batch_size=self.batch_size, device=self.device, num_workers=self.data.num_workers,
                progress=self.progress, checkpoint_digest=self._digest,
                progress_interval_s=self.progress_interval_s)
            how = "read from cache" if feats.cache_hit else f"extracted in {feats.seconds:.1f} s"
            self.log(f"{split} features ({', '.join(spaces)}; {len(feats.targets)} images, "
                     f"{self.precision.name}): {how}")
            self._features[key] = feats
        return self._features[key]

    # -- probe -----------------------------------------------------------------------------
    def probe(self, *, subvector: int | None = None, l2: float | None = None,
              select: bool = False, knn_k: int | None = None,
              knn_temperature: float | None = None, knn: bool = True) -> ProbeRecord:
        """Linear probe (top-1/top-5) and kNN on r, or on r[:, :subvector] (Appendix F).

        l2: the probe's L2 strength (default `eval.DEFAULT_L2`); select=True picks it from
        `eval.DEFAULT_L2_GRID` on 10% held-out train rows (`select_l2`) instead. Returns the
        probe.json record (accuracies in percent; `to_dict()` for the file).
        """
        if l2 is not None and select:
            raise UserError("--l2 and --select-l2 both set the probe's regularisation: pass one")
        dim = self.target.loaded.feature_dim
        if subvector is not None and not 1 <= subvector <= dim:
            raise UserError(f"--subvector {subvector} does not fit r, which has {dim} "
                            f"coordinates; pass a d0 between 1 and {dim}")
        train, test = self.features("train"), self.features("test")
        cols = slice(None) if subvector is None else slice(0, subvector)
        xtr, xte = train.r[:, cols], test.r[:, cols]
        num_classes = int(max(train.targets.max(), test.targets.max())) + 1
        selection = None
        if select:
            self.log("selecting the probe's l2 on held-out train rows")
            selection = select_l2(xtr, train.targets, num_classes=num_classes)
            l2_used, l2_source = selection.l2, "select_l2 (10% of train held out)"
        else:
            l2_used = DEFAULT_L2 if l2 is None else l2
            l2_source = "default" if l2 is None else "--l2"
        self.log(f"linear probe on {xtr.shape[1]} dims (l2 {l2_used:g})")
        res = linear_probe(xtr, train.targets, xte, test.targets, l2=l2_used,
                           num_classes=num_classes)
        knn_result = None
        if knn:
            k = DEFAULT_K if knn_k is None else knn_k
            t = DEFAULT_TEMPERATURE if knn_temperature is None else knn_temperature
            self.log(f"kNN (k = {k}, temperature {t:g})")
            knn_result = knn_classify(xtr, train.targets, xte, test.targets, k=k,
                                      temperature=t, num_classes=num_classes)
        return ProbeRecord(
            checkpoint=self.target.describe(), data=self.data.describe(),
            features=FeatureProvenance(space="r", precision=self.precision.name,
                                       train=FeatureInfo.of(train), test=FeatureInfo.of(test)),
            subvector=subvector, dim=int(xtr.shape[1]), linear_probe=res, l2_source=l2_source,
            l2_selection=selection, knn=knn_result)

    # -- spectrum --------------------------------------------------------------------------
    def spectrum(self, space: str = "representation", *, normalize: bool = True,
                 center: bool = True, ddof: int = 0, threshold: float | None = None,
                 raw_samples: int | None = 25_600, precision: str = "float64"
                 ) -> SpectrumSummary:
        """Covariance spectrum (Eqn 1) and collapse metrics of r or z on the test split.

        Returns `SpectrumAccumulator.summary()` with `source` (checkpoint, split, space,
        features): the keys of an embeddings file's spectrum.json.
        """
        short = SPACES.get(space)
        if short is None:
            raise UserError(f"unknown space {space!r}: choose representation or embedding")
        feats = self.features("test", ("r", "z") if short == "z" else ("r",))
        x = feats.space(short)
        acc = SpectrumAccumulator(x.shape[1], normalize=normalize, center=center,
                                  precision=precision, raw_max_samples=raw_samples)
        for chunk in x.split(8192):
            acc.update(chunk.numpy())
        summary = acc.summary(ddof=ddof, rel_threshold=COLLAPSE_REL_THRESHOLD
                              if threshold is None else threshold)
        return summary.with_source({
            "checkpoint": self.target.describe(), "data": self.data.describe(), "split": "test",
            "space": space, "n": int(x.shape[0]), "dim": int(x.shape[1]),
            "precision": self.precision.name, "features": FeatureInfo.of(feats)})


def progress_enabled(quiet: bool) -> bool:
    """Progress is shown unless quiet: a bar on a terminal, plain lines in a log."""
    return not quiet
