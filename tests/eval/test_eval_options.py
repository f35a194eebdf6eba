"""The shared evaluation flags map one to one onto EvalOptions (so from_args misses none)."""

import argparse
from dataclasses import fields

from dimcollapse.eval_options import EvalOptions, add_eval_arguments


def test_every_eval_flag_is_an_option_field_and_back():
    p = argparse.ArgumentParser()
    add_eval_arguments(p, precision_flag="--feature-precision")
    p.add_argument("--quiet", action="store_true")
    dests = {a.dest for a in p._actions if a.dest != "help"}
    assert dests == {f.name for f in fields(EvalOptions)}
    args = p.parse_args(["--threads", "2", "--no-feature-cache", "--feature-precision", "fp32"])
    opts = EvalOptions.from_args(args)
    assert (opts.threads, opts.no_feature_cache, opts.feature_precision) == (2, True, "fp32")
    assert EvalOptions.from_args(p.parse_args([])) == EvalOptions()  # same defaults
