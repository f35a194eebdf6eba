"""Without Lightning installed, importing the callback says how to get it (one UserError)."""

import importlib
import sys

import pytest

from dimcollapse.errors import UserError


def test_missing_lightning_says_how_to_install(monkeypatch):
    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        monkeypatch.setitem(sys.modules, name, None)  # "import lightning.pytorch" fails
    monkeypatch.delitem(sys.modules, "dimcollapse.monitor.lightning", raising=False)
    with pytest.raises(UserError, match=r"pip install 'dimcollapse\[lightning\]'"):
        importlib.import_module("dimcollapse.monitor.lightning")
    sys.modules.pop("dimcollapse.monitor.lightning", None)  # a half-imported module
