"""Live collapse monitoring of any model: `CollapseMonitor` (see docs/api.md)."""

from dimcollapse.monitor.collapse_monitor import DEFAULT_METRICS, CollapseMonitor

__all__ = ["DEFAULT_METRICS", "CollapseMonitor"]
