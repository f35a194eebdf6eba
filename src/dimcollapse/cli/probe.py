"""`dimcollapse probe` (placeholder: being built)."""


def add_parser(sub) -> None:
    p = sub.add_parser("probe", help="(not built yet)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    raise SystemExit("dimcollapse probe: not built yet")
