"""What `CollapseMonitor.watch` needs from torch: module lookup by name and output -> rows.

Kept apart from the monitor so that feeding numpy arrays never imports torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from dimcollapse.errors import UserError
from dimcollapse.spectrum.covariance import is_tensor


def as_rows(name: str, x: Any) -> Any:
    """A layer output as an (N, d) batch of rows, detached (the monitor never holds the graph).

    - (N, d): as is; (N,): one column.
    - (N, C, *spatial) feature maps (torch's conv layout): globally average-pooled over the
      spatial dimensions -> (N, C), as a backbone's own avgpool does. (Token sequences (N, L, C)
      are not conv layout: pool or pick the tokens yourself and call `update`.)
    - a tuple or list (e.g. (output, aux)): its first tensor.
    numpy arrays get the same treatment (no pooling in torch, no copy when 2-D).
    """
    if isinstance(x, (tuple, list)):
        first = next((v for v in x if is_tensor(v) or hasattr(v, "ndim")), None)
        if first is None:
            raise UserError(f"monitor {name!r}: the output is a {type(x).__name__} without a "
                            "tensor; feed the tensor yourself with monitor.update(name, tensor)")
        x = first
    if is_tensor(x):
        x = x.detach()
        if x.ndim > 2:
            x = x.mean(dim=tuple(range(2, x.ndim)))
    elif hasattr(x, "ndim"):
        if x.ndim > 2:
            x = x.mean(axis=tuple(range(2, x.ndim)))
    else:
        raise UserError(f"monitor {name!r}: got a {type(x).__name__}, not a tensor or array; "
                        "pass an (N, d) torch tensor or numpy array")
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    if x.ndim != 2:
        raise UserError(f"monitor {name!r}: expected an (N, d) batch or an (N, C, H, W) "
                        f"feature map, got shape {tuple(x.shape)}")
    return x


def find_module(model: Any, path: str, *, what: str = "watch()") -> Any:
    """model's submodule called `path` (a `named_modules()` name; "" is the model itself).

    what: who asks, for the error message (watch(), --layers)."""
    import torch  # torch: the monitor imports without it (numpy inputs); watch() needs a model

    if not isinstance(model, torch.nn.Module):
        raise UserError(f"{what} needs a torch.nn.Module, got {type(model).__name__}")
    modules = dict(model.named_modules())
    if path not in modules:
        names = [n for n in modules if n]
        close = difflib.get_close_matches(path, names, n=3)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        shown = ", ".join(names[:40]) + (f", ... ({len(names)} in all)" if len(names) > 40
                                         else "")
        raise UserError(f"{what}: the model has no module {path!r}; {hint}pass one of its "
                        f"named_modules() names: {shown or '(no submodules)'}")
    return modules[path]


def add_output_hook(module: Any, callback: Callable[[Any], None]) -> Any:
    """Register a forward hook passing the module's output to `callback`; returns the handle.

    The hook returns None, so the module's output is never replaced.
    """
    def hook(_module, _inputs, output) -> None:
        callback(output)

    return module.register_forward_hook(hook)


def watch_targets(targets: Mapping[str, str] | Any) -> dict[str, str]:
    """{monitor name: module path}, checked."""
    if not isinstance(targets, Mapping) or not targets:
        raise UserError("watch() needs a dict {monitor name: module name}, e.g. "
                        '{"r": "backbone.avgpool", "z": "projector"}')
    for key, path in targets.items():
        if not isinstance(key, str) or not key or not isinstance(path, str):
            raise UserError(f"watch(): {key!r}: {path!r} is not a name -> module-name pair of "
                            "strings")
    return dict(targets)
