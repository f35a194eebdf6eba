"""Record.to_dict: fields in declaration order, nested records and tuples made plain."""

from dataclasses import dataclass

from dimcollapse.records import Record, plain


@dataclass(frozen=True)
class _Inner(Record):
    b: int
    a: tuple[float, ...]


@dataclass(frozen=True)
class _Outer(Record):
    z: _Inner
    y: dict
    x: str | None = None

    OMIT_IF_NONE = ("x",)


def test_to_dict_keeps_field_order_and_makes_values_plain():
    rec = _Outer(z=_Inner(b=1, a=(0.5, 2.0)), y={"k": (_Inner(2, ()),)})
    d = rec.to_dict()
    assert list(d) == ["z", "y"]  # x is None and omitted
    assert list(d["z"]) == ["b", "a"] and d["z"]["a"] == [0.5, 2.0]
    assert d["y"] == {"k": [{"b": 2, "a": []}]}
    assert list(_Outer(z=_Inner(1, ()), y={}, x="s").to_dict()) == ["z", "y", "x"]
    assert plain([(1, 2), {"a": (3,)}]) == [[1, 2], {"a": [3]}]
