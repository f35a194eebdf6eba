"""`dimcollapse train`: self-supervised pretraining of one arm of the paper's Tables 1-2.

Parses flags into config overrides and calls `dimcollapse.train.run_training`. Every flag
defaults to "unset": the value then comes from --config FILE, else --preset, else the paper's
recipe (Appendix D); a flag given explicitly always wins. The same flags work under
`torchrun --nproc_per_node N -m dimcollapse train ...` (DDP; --batch-size stays global).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import textwrap
import typing

from dimcollapse.catalogue import FLAGS, Flag, show
from dimcollapse.config import (
    PRESETS,
    TrainConfig,
    config_to_dict,
    load_config,
    preset_config,
    resolve,
)
from dimcollapse.errors import UserError
from dimcollapse.progress import DEFAULT_INTERVAL_S

# dest -> dotted config key, from the catalogue. Other flags are handled in _overrides.
FLAG_KEYS = {f.dest: f.key for f in FLAGS}


# What each preset is for; its numbers come from the resolved preset config (_preset_line).
PRESET_GIST = {"imagenet": "the paper", "cifar": "one GPU",
               "cpu": "this laptop-class CPU in ~5 min"}


def _preset_line(cfg: TrainConfig) -> str:
    d, m, o, lp = cfg.data, cfg.model, cfg.optim, cfg.loop
    length = f"{lp.max_steps} steps" if lp.max_steps is not None else f"{lp.epochs} epochs"
    warm = (f"{o.warmup_steps} steps" if o.warmup_steps is not None
            else f"{o.warmup_epochs:g} epochs")
    return (f"{d.dataset}, {m.backbone} {m.stem} stem, {d.image_size} px, {o.name} lr "
            f"{o.lr:g}, batch {lp.batch_size}, {length} ({warm} warm-up), wd "
            f"{show(o.weight_decay)}, precision {lp.precision}{', SyncBN' if m.sync_bn else ''}")


def _presets_epilog(configs: dict[str, TrainConfig]) -> str:
    lines = ["presets (explicit flags override them; defaults = the paper's Appendix D recipe):"]
    for name, cfg in configs.items():
        text = f"{PRESET_GIST[name]}: " if name in PRESET_GIST else ""
        lines.append(textwrap.fill(text + _preset_line(resolve(cfg)), width=96,
                                   initial_indent=f"  {name:9s} ", subsequent_indent=" " * 12))
    lines += [
        "",
        "examples:",
        "  dimcollapse train --preset cpu --data-dir ../shared/datasets/cifar10 "
        "--projector directclr --d0 90 --out runs/dclr",
        "  torchrun --nproc_per_node 8 -m dimcollapse train --preset imagenet "
        "--data-dir /data/imagenet --projector directclr --d0 360 --out runs/dclr",
        "",
        "The run folder holds config.json, run.json, metrics.jsonl and checkpoint_*.pt. "
        "Rerunning the same command resumes from its checkpoint; SIGTERM/Ctrl-C write a "
        "checkpoint and exit.",
    ]
    return "\n".join(lines)


def add_parser(sub) -> None:
    configs = {name: preset_config(name) for name in PRESETS}
    p = sub.add_parser(
        "train", help="pretrain a backbone + projector arm (SimCLR variants, DirectCLR)",
        description="Self-supervised pretraining of one arm of the paper's Tables 1-2. Unset "
        "flags come from --config, else --preset, else the paper's recipe.",
        epilog=_presets_epilog(configs), formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, metavar="DIR", help="run folder (created; reused to "
                   "resume)")
    g.add_argument("--preset", choices=sorted(PRESETS), help="named recipe (see below)")
    g.add_argument("--config", metavar="FILE", help="start from this JSON config (e.g. a run's "
                   "config.json) instead of a preset")
    g.add_argument("--resume", nargs="?", const="auto", metavar="CHECKPOINT",
                   help="continue a run: without a value, from the checkpoint in --out (an "
                   "error if there is none); with a path, from that checkpoint. Without "
                   "--resume a run folder holding a checkpoint is resumed automatically")
    _add_flags(g, "run", configs)
    g.add_argument("--quiet", action="store_true", help="no progress (a bar on a terminal, "
                   f"plain lines every {DEFAULT_INTERVAL_S:g} s otherwise) or status lines")
    g.add_argument("--print-config", action="store_true",
                   help="check the config as a run does (arm, d0, loss, optimizer, "
                   "views), print it as JSON and exit without training")

    for title in ("data", "model", "loss", "optimisation", "schedule and loop"):
        _add_flags(p.add_argument_group(title), title, configs)
    p.set_defaults(func=_run)


def _add_flags(group, title: str, presets: dict[str, TrainConfig]) -> None:
    """The catalogue's flags of argument group `title`; type and help default come from the
    dataclass field, so --help cannot drift from the config."""
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for f in FLAGS:
        if f.group != title:
            continue
        target = group
        if f.exclusive is not None:
            if f.exclusive not in exclusive:
                exclusive[f.exclusive] = group.add_mutually_exclusive_group()
            target = exclusive[f.exclusive]
        kind = _field_types()[f.key]
        kw: dict = {"help": _help(f, presets), "metavar": f.metavar}
        if kind is bool:
            kw = {"help": kw["help"], "action": argparse.BooleanOptionalAction}
        elif kind is not str:
            kw["type"] = kind
        if f.names is not None and f.choices:
            kw["choices"] = f.names
        target.add_argument(f.flag, **kw)


@functools.cache
def _field_types() -> dict[str, type]:
    """Dotted config key -> int, float, bool or str (the field's type without `| None`)."""
    out = {}
    for section, hint in typing.get_type_hints(TrainConfig).items():
        fields = typing.get_type_hints(hint) if dataclasses.is_dataclass(hint) else {"": hint}
        for name, t in fields.items():
            args = [a for a in typing.get_args(t) if a is not type(None)]
            out[f"{section}.{name}" if name else section] = args[0] if args else t
    return out


def _default(key: str, cfg: TrainConfig):
    section, _, name = key.rpartition(".")
    return getattr(getattr(cfg, section) if section else cfg, name)


def _help(f: Flag, presets: dict[str, TrainConfig]) -> str:
    """The flag's help with {default}, {names} and {preset[NAME]} filled in."""
    shown = {name: show(_default(f.key, cfg)) for name, cfg in presets.items()}
    names = ", ".join(f.names) if f.names is not None else ""
    return f.help.format(default=show(_default(f.key, TrainConfig())), names=names,
                         preset=shown)


def _overrides(args: argparse.Namespace) -> dict:
    """Explicit flags as {dotted key: value}, plus the keys an explicit flag makes moot."""
    over = {FLAG_KEYS[k]: v for k, v in vars(args).items() if k in FLAG_KEYS and v is not None}
    if args.epochs is not None:
        over["loop.max_steps"] = None  # --epochs beats a preset's step budget
    if args.warmup_epochs is not None and args.warmup_steps is None:
        over["optim.warmup_steps"] = None
    if args.lr_per_256 is not None and args.lr is None:
        over["optim.lr"] = None
    return over


def _run(args: argparse.Namespace) -> int:
    if args.config and args.preset:
        raise UserError("--config and --preset both give a base recipe; pass only one")
    over = _overrides(args)
    if args.config:
        base = config_to_dict(load_config(args.config))
        over = {**{f"{s}.{k}": v for s, sec in base.items() if isinstance(sec, dict)
                   for k, v in sec.items()},
                **{k: v for k, v in base.items() if not isinstance(v, dict)}, **over}

    # torch: kept out of --help
    from dimcollapse.train import LossNotFinite, PeerLost, plan_run, train

    cfg, ckpt = plan_run(args.out, preset=args.preset, overrides=over, resume=args.resume)
    if args.print_config:
        from dimcollapse.build import check_buildable  # imports torch (kept out of --help)

        check_buildable(cfg)
        print(json.dumps(config_to_dict(cfg), indent=2))
        return 0
    try:
        result = train(cfg, args.out, checkpoint=ckpt, quiet=args.quiet)
    except (LossNotFinite, PeerLost) as err:
        print(f"dimcollapse train: error: {err}", file=sys.stderr)
        return 1
    if result.status == "interrupted":
        return 128 + int(result.signum or 0)
    return 0
