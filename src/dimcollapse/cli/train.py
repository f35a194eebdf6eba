"""`dimcollapse train`: self-supervised pretraining of one arm of the paper's Tables 1-2.

Parses flags into config overrides and calls `dimcollapse.train.run_training`. Every flag
defaults to "unset": the value then comes from --config FILE, else --preset, else the paper's
recipe (Appendix D); a flag given explicitly always wins. The same flags work under
`torchrun --nproc_per_node N -m dimcollapse train ...` (DDP; --batch-size stays global).
"""

from __future__ import annotations

import argparse
import json
import sys

from dimcollapse.config import PRESETS, config_to_dict, load_config

# dest -> dotted config key. Flags whose dest is not here are handled in _overrides.
FLAG_KEYS = {
    "dataset": "data.dataset", "data_dir": "data.data_dir", "image_size": "data.image_size",
    "train_subset": "data.train_subset", "download": "data.download",
    "cache_dir": "data.cache_dir", "workers": "data.num_workers",
    "views": "views.preset",
    "backbone": "model.backbone", "stem": "model.stem", "projector": "model.projector",
    "d0": "model.d0", "hidden_dim": "model.hidden_dim", "out_dim": "model.out_dim",
    "groups": "model.groups", "sync_bn": "model.sync_bn",
    "loss": "loss.name", "temperature": "loss.temperature",
    "optimizer": "optim.name", "lr": "optim.lr", "lr_per_256": "optim.lr_per_256",
    "weight_decay": "optim.weight_decay", "momentum": "optim.momentum", "lars_eta": "optim.eta",
    "warmup_epochs": "optim.warmup_epochs", "warmup_steps": "optim.warmup_steps",
    "final_lr_ratio": "optim.final_lr_ratio", "probe_lr_scale": "optim.probe_lr_scale",
    "batch_size": "loop.batch_size", "epochs": "loop.epochs", "max_steps": "loop.max_steps",
    "precision": "loop.precision", "channels_last": "loop.channels_last",
    "device": "loop.device", "threads": "loop.threads",
    "checkpoint_every": "loop.checkpoint_every_steps",
    "log_every": "loop.log_every_steps", "spectrum_every": "loop.spectrum_every_steps",
    "spectrum_window": "loop.spectrum_window_steps", "seed": "seed",
}

PROJECTOR_NAMES = ("mlp, linear, none, directclr, orthogonal, diagonal, lowrank, "
                   "lowrank-diagonal, random-subvector, group")


def _presets_epilog() -> str:
    lines = ["presets (explicit flags override them; defaults = the paper's Appendix D recipe):"]
    about = {
        "imagenet": "the paper: ImageNet ImageFolder, ResNet-50, 224 px, LARS lr 4.8, batch "
                    "4096, 100 epochs (10 warm-up), wd 1e-6, SyncBN, mixed precision",
        "cifar": "one GPU: CIFAR-10, ResNet-18 cifar stem, 32 px, LARS lr 0.6, batch 512, "
                 "800 epochs (10 warm-up)",
        "cpu": "this laptop-class CPU in ~5 min: CIFAR-10, ResNet-18 imagenet stem, 32 px, "
               "bf16, SGD lr 0.3, batch 256, {steps} steps (30 warm-up)",
    }
    for name in PRESETS:
        text = about.get(name, "")
        if name == "cpu":
            text = text.format(steps=PRESETS["cpu"]["loop"]["max_steps"])
        lines.append(f"  {name:9s} {text}")
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
    p = sub.add_parser(
        "train", help="pretrain a backbone + projector arm (SimCLR variants, DirectCLR)",
        description="Self-supervised pretraining of one arm of the paper's Tables 1-2. Unset "
        "flags come from --config, else --preset, else the paper's recipe.",
        epilog=_presets_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    b = argparse.BooleanOptionalAction
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
    g.add_argument("--seed", type=int, help="seed of model init, batch order, views and "
                   "projector draws (default 0)")
    g.add_argument("--quiet", action="store_true", help="no progress bar or status lines")
    g.add_argument("--print-config", action="store_true",
                   help="print the resolved config as JSON and exit without training")

    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=["cifar10", "cifar100", "stl10", "imagefolder"],
                   help="training set (imagefolder: DIR/train/<class>/<images>, e.g. ImageNet)")
    g.add_argument("--data-dir", metavar="DIR", help="dataset root (ImageFolder tree or "
                   "torchvision files)")
    g.add_argument("--train-subset", type=int, metavar="N", help="train on a fixed, seeded, "
                   "class-balanced subset of N images")
    g.add_argument("--image-size", type=int, metavar="PIXELS", help="side of the square views")
    g.add_argument("--download", action=b, help="let torchvision download cifar10/100 or "
                   "stl10 into --data-dir (needs a network)")
    g.add_argument("--cache-dir", metavar="DIR", help="cache of decoded images (default "
                   "$DIMCOLLAPSE_CACHE or ~/.cache/dimcollapse)")
    g.add_argument("--workers", type=int, metavar="N", help="decode processes for streaming "
                   "(imagefolder) datasets")
    g.add_argument("--views", choices=["imagenet", "cifar"], help="augmentation preset "
                   "(imagenet: Appendix D with blur/solarisation; cifar: small-image variant)")

    g = p.add_argument_group("model")
    g.add_argument("--backbone", choices=["resnet18", "resnet50"], help="torchvision ResNet, "
                   "zero_init_residual")
    g.add_argument("--stem", choices=["imagenet", "cifar"], help="imagenet: 7x7/2 conv + "
                   "maxpool; cifar: 3x3/1 conv, no maxpool")
    g.add_argument("--projector", metavar="ARM", help=f"one of {PROJECTOR_NAMES}")
    g.add_argument("--d0", type=int, metavar="DIMS", help="coordinates of r the loss sees "
                   "(directclr, lowrank, lowrank-diagonal, random-subvector); paper: 360 of 2048")
    g.add_argument("--hidden-dim", type=int, metavar="DIMS", help="mlp projector hidden width "
                   "(default: the representation size)")
    g.add_argument("--out-dim", type=int, metavar="DIMS", help="projector output size "
                   "(default 128 for mlp/linear)")
    g.add_argument("--groups", type=int, metavar="N", help="groups of the group arm "
                   "(default 8)")
    g.add_argument("--sync-bn", action=b, help="BatchNorm statistics over the global batch "
                   "under DDP (default on)")

    g = p.add_argument_group("loss")
    g.add_argument("--loss", choices=["infonce", "ntxent"], help="infonce: the official "
                   "code's (cross-view negatives); ntxent: SimCLR's 2N-2 negatives")
    g.add_argument("--temperature", type=float, metavar="TAU", help="softmax temperature "
                   "(default 0.1)")

    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", choices=["lars", "sgd", "adamw"], help="default lars")
    g.add_argument("--lr", type=float, help="peak learning rate (default: --lr-per-256 x "
                   "batch / 256)")
    g.add_argument("--lr-per-256", type=float, metavar="LR", help="linear scaling rule base "
                   "(default 0.3: lr 4.8 at batch 4096)")
    g.add_argument("--weight-decay", type=float, help="L2 decay, not on biases/norms "
                   "(default 1e-6)")
    g.add_argument("--momentum", type=float, help="lars/sgd momentum (default 0.9)")
    g.add_argument("--lars-eta", type=float, metavar="ETA", help="LARS trust coefficient "
                   "(default 0.001)")
    g.add_argument("--warmup-epochs", type=float, metavar="EPOCHS", help="linear warm-up "
                   "length (default 10)")
    g.add_argument("--warmup-steps", type=int, metavar="STEPS", help="warm-up length in "
                   "steps (overrides --warmup-epochs)")
    g.add_argument("--final-lr-ratio", type=float, metavar="RATIO", help="cosine ends at "
                   "RATIO x lr (default 0.001, the official code)")
    g.add_argument("--probe-lr-scale", type=float, metavar="RATIO", help="online classifier "
                   "lr = RATIO x lr (default 1 as the official code; cpu preset 1/3)")

    g = p.add_argument_group("schedule and loop")
    g.add_argument("--batch-size", type=int, metavar="PAIRS", help="global batch (image "
                   "pairs), split evenly over processes (default 4096)")
    length = g.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="schedule length in epochs (default 100)")
    length.add_argument("--max-steps", type=int, metavar="STEPS", help="schedule length in "
                        "optimizer steps (overrides a preset's epochs)")
    g.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], help="autocast "
                   "dtype (auto: bf16 where supported, fp16 + loss scaling on older GPUs)")
    g.add_argument("--channels-last", action=b, help="NHWC memory format (default on)")
    g.add_argument("--device", help="auto | cpu | cuda | cuda:N (auto: torchrun's local GPU, "
                   "else cuda:0, else cpu)")
    g.add_argument("--threads", type=int, metavar="N", help="CPU threads per process "
                   "(default: torch's, one per core; on a busy shared machine 1 is faster)")
    g.add_argument("--checkpoint-every", type=int, metavar="STEPS", help="write "
                   "checkpoint_last.pt every STEPS steps (0: only at the end)")
    g.add_argument("--log-every", type=int, metavar="STEPS", help="metrics.jsonl line every "
                   "STEPS steps")
    g.add_argument("--spectrum-every", type=int, metavar="STEPS", help="RankMe and collapsed "
                   "dims of r and z every STEPS steps (0: off)")
    g.add_argument("--spectrum-window", type=int, metavar="STEPS", help="training batches "
                   "pooled per spectrum (default: enough for 2x the representation size)")
    p.set_defaults(func=_run)


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
    from dimcollapse.errors import UserError

    if args.config and args.preset:
        raise UserError("--config and --preset both give a base recipe; pass only one")
    over = _overrides(args)
    if args.config:
        base = config_to_dict(load_config(args.config))
        over = {**{f"{s}.{k}": v for s, sec in base.items() if isinstance(sec, dict)
                   for k, v in sec.items()},
                **{k: v for k, v in base.items() if not isinstance(v, dict)}, **over}

    from dimcollapse.train import LossNotFinite, PeerLost, plan_run, train

    cfg, ckpt = plan_run(args.out, preset=args.preset, overrides=over, resume=args.resume)
    if args.print_config:
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
