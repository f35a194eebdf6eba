"""Test-only entry point: `dimcollapse train ARGS` with every module and view in float64.

`python tests/train/float64_train.py ARGS` (or the same path under torchrun) is
`python -m dimcollapse train ARGS` except that the default dtype is float64 and the views are
cast to it, as `trainhelpers._drive` does for the in-process DDP test. One process and two
then agree to round-off (1e-10) instead of drifting apart through float32 ReLU and max-pool
flips. Not collected by pytest (no test_ prefix).
"""

import sys

import torch


def _views_in_default_dtype(forward_backward):
    def wrapped(model, view1, view2, *args, **kwargs):
        dtype = torch.get_default_dtype()
        return forward_backward(model, view1.to(dtype), view2.to(dtype), *args, **kwargs)

    return wrapped


if __name__ == "__main__":
    from dimcollapse.cli import main
    from dimcollapse.train import loop

    torch.set_default_dtype(torch.float64)
    loop.forward_backward = _views_in_default_dtype(loop.forward_backward)
    sys.exit(main(["train", *sys.argv[1:]]))
