"""Argparse errors are one line with a pointer to --help, exit 2, in every subcommand."""

from __future__ import annotations

import pytest

from dimcollapse.cli import SUBCOMMANDS, main

CASES = [["reproduce", "table9"], ["reproduce", "table1,table1"], ["reproduce"],
         ["toy", "strong-aug", "--steps", "x"], ["toy"], ["train", "--batch-size", "many"],
         ["probe", "--no-such-flag"],
         ["spectrum"], ["compare"], ["demo", "--bogus"], ["nosuchcommand"]]


@pytest.mark.parametrize("argv", CASES, ids=[" ".join(a) for a in CASES])
def test_argparse_error_is_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0] and "--help`" in lines[0] and "usage:" not in err
    if argv[0] in SUBCOMMANDS:
        assert lines[0].startswith(f"dimcollapse {argv[0]}")
