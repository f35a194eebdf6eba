"""The base of the typed records that cross module boundaries and end up in JSON files.

A record is a frozen dataclass; `to_dict()` gives its fields in declaration order as plain
JSON-ready values (nested records through their own `to_dict`, tuples as lists), so the field
order *is* the JSON key order and adding a field is one edit. Readers use the attributes; only
the file writers call `to_dict()`.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, ClassVar


def plain(value: Any) -> Any:
    """value with records turned into dicts and tuples into lists, recursively."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Record:
    """Mixin for frozen dataclasses: `to_dict()` from the fields (see the module docstring).

    Fields named in `OMIT_IF_NONE` are left out of the dict when they are None (an optional
    part a later step adds, e.g. a spectrum's `source`).
    """

    OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.name in self.OMIT_IF_NONE:
                continue
            out[f.name] = plain(value)
        return out
