"""dimcollapse: measure, explain and prevent dimensional collapse in self-supervised learning.

Built from Jing, Vincent, LeCun and Tian, "Understanding Dimensional Collapse in Contrastive
Self-supervised Learning" (ICLR 2022). The public Python API (docs/api.md):

    import dimcollapse
    s = dimcollapse.measure(z)        # z: (N, d) tensor or array -> Spectrum
    s.rankme, s.collapsed_dims, s.collapse, s.eigenvalues, s.to_dict(), s.plot()
    monitor = dimcollapse.CollapseMonitor()
    monitor.watch(model, {"r": "backbone.avgpool", "z": "projector"}); monitor.compute()

The function is `measure`, not `spectrum`: `dimcollapse.spectrum` is the subpackage holding the
accumulator and metric definitions. Everything here is imported on first use, so
`import dimcollapse` stays free of numpy and torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module defining it (imported on first attribute access)
_EXPORTS = {
    "measure": "dimcollapse.spectrum.measure",
    "Spectrum": "dimcollapse.spectrum.measure",
    "CollapseMonitor": "dimcollapse.monitor.collapse_monitor",
    "rankme": "dimcollapse.spectrum.functions",
    "alpha_req": "dimcollapse.spectrum.functions",
    "collapsed_dims": "dimcollapse.spectrum.functions",
    "normalized_std": "dimcollapse.spectrum.functions",
    "effective_rank": "dimcollapse.spectrum.functions",
    "nesum": "dimcollapse.spectrum.functions",
    "lidar": "dimcollapse.spectrum.functions",
    "covariance_spectrum": "dimcollapse.spectrum.covariance",
    "SpectrumAccumulator": "dimcollapse.spectrum.accumulator",
    "UserError": "dimcollapse.errors",
}

__all__ = [  # the same names as _EXPORTS (a test checks), spelled out for linters and readers
    "CollapseMonitor",
    "Spectrum",
    "SpectrumAccumulator",
    "UserError",
    "__version__",
    "alpha_req",
    "collapsed_dims",
    "covariance_spectrum",
    "effective_rank",
    "lidar",
    "measure",
    "nesum",
    "normalized_std",
    "rankme",
]

if TYPE_CHECKING:
    from dimcollapse.errors import UserError
    from dimcollapse.monitor.collapse_monitor import CollapseMonitor
    from dimcollapse.spectrum.accumulator import SpectrumAccumulator
    from dimcollapse.spectrum.covariance import covariance_spectrum
    from dimcollapse.spectrum.functions import (
        alpha_req,
        collapsed_dims,
        effective_rank,
        lidar,
        nesum,
        normalized_std,
        rankme,
    )
    from dimcollapse.spectrum.measure import Spectrum, measure


def __getattr__(name: str) -> Any:
    """Lazy exports (PEP 562): the defining module is imported on first access."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dimcollapse' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
