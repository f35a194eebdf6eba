"""`dimcollapse demo`: the main job. Runs the theory experiments (and, when CIFAR-10 is found,
a short image-model run) and writes report.md."""

from __future__ import annotations

import sys
from pathlib import Path

from dimcollapse.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the theory experiments and checks (and a short image run), write "
        "DIR/report.md",
        description="Runs `dimcollapse toy all` with the paper's settings (Fig 3, 5, 6, 11 and "
        "the numeric checks; about half a minute on 2 CPU cores) into DIR/toy/; then, when "
        "CIFAR-10 is found (--data-dir, $DIMCOLLAPSE_DATA, or ../shared/datasets/cifar10 "
        "relative to the current folder or the repository), trains DirectCLR and SimCLR "
        "without a projector briefly (a few minutes on 2 CPU cores) and draws their "
        "representation spectra side by side (DIR/images/). Writes DIR/report.md embedding "
        "every figure with a reading computed from the results. Exit status 1 when a numeric "
        "check fails.")
    p.add_argument("--out", type=Path, default=Path("runs/demo"),
                   help="demo folder (default: runs/demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--toy-steps", type=int, default=None, metavar="N",
                   help="SGD steps of each toy experiment (default: the paper's 10000)")
    g = p.add_argument_group("image section")
    g.add_argument("--data-dir", metavar="DIR", help="CIFAR-10 folder (default: found "
                   "automatically, see above)")
    g.add_argument("--no-images", action="store_true", help="skip the image section")
    g.add_argument("--image-steps", type=int, default=None, metavar="N",
                   help="training steps of each image run (default 150)")
    g.add_argument("--image-batch", type=int, default=None, metavar="PAIRS",
                   help="batch of the image runs (default: the cpu preset's 256)")
    g.add_argument("--image-size", type=int, default=None, metavar="PIXELS",
                   help="image side of the image runs (default 32)")
    p.add_argument("--replot", action="store_true",
                   help="only redraw the figures (and report.md) from the JSON already in "
                   "--out, without training")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _run(args) -> int:
    # numpy, torch: kept out of --help
    from dimcollapse.report.demo_report import TOY_DIR, write_report
    from dimcollapse.toy.outputs import run_all

    if args.toy_steps is not None and args.toy_steps < 1:
        raise UserError("--toy-steps must be at least 1")
    if args.image_steps is not None and args.image_steps < 1:
        raise UserError("--image-steps must be at least 1")

    def log(msg: str) -> None:
        print(f"demo: {msg}", file=sys.stderr, flush=True)

    if args.replot:
        return _replot(args)

    data = None
    if not args.no_images:
        # numpy: kept out of --help
        from dimcollapse.reproduce.datasets import find_dataset

        data = find_dataset("cifar10", args.data_dir)  # an explicit bad --data-dir fails now
    res = run_all(args.out / TOY_DIR, seed=args.seed, steps=args.toy_steps,
                  progress=not args.quiet, log=log)
    if not args.no_images:
        _images(args, data, log)
    report = write_report(args.out)
    print(f"demo: wrote {report} ({len(res['files'])} result files in {args.out / TOY_DIR})")
    if not res["verify_passed"]:
        print("demo: a numeric check of the theory FAILED (see the report)", file=sys.stderr)
        return 1
    return 0


def _images(args, data, log) -> None:
    # numpy: kept out of --help
    from dimcollapse.reproduce import demo, how_to_get

    if data is None:
        log(f"image section skipped: no CIFAR-10 found; {how_to_get('cifar10')}")
        demo.write_no_data(args.out, "no CIFAR-10 folder found")
        return
    log(f"image section: DirectCLR and no projector on {data}")
    kwargs = {"steps": args.image_steps or demo.DEFAULT_STEPS, "batch_size": args.image_batch,
              "image_size": args.image_size, "seed": args.seed}
    demo.run_image_demo(args.out, data, progress=not args.quiet and sys.stderr.isatty(),
                        quiet=args.quiet, log=lambda m: log(f"images: {m}"), **kwargs)


def _replot(args) -> int:
    """Figures and report.md from the JSON on disk (toy/*.json, images/images.json)."""
    # numpy, torch: kept out of --help
    from dimcollapse.report.demo_report import TOY_DIR, write_report
    from dimcollapse.reproduce import demo
    from dimcollapse.toy.outputs import FILES, replot

    drawn = []
    for name in ("strong-aug", "implicit-reg", "depth"):
        if (args.out / TOY_DIR / FILES[name][0]).is_file():
            drawn += replot(name, args.out / TOY_DIR)
    if (args.out / demo.IMAGES_DIR / demo.SUMMARY).is_file():
        drawn.append(demo.replot_images(args.out))
    report = write_report(args.out)
    print(f"demo: redrew {len(drawn)} figures and wrote {report}")
    return 0
