"""``tinyres exercise list | show NAME | check NAME [--file PATH]``: the command line of
``tinyres.exercises``, added to the ``tinyres`` command by ``add_parser``."""
from pathlib import Path


def add_parser(subparsers):
    p = subparsers.add_parser("exercise", help="write a layer's backward yourself and have it checked")
    p.add_argument("action", choices=["list", "show", "check"],
                   help="list the exercises, show one's stub file, or check your file")
    p.add_argument("name", nargs="?", help="the exercise (see: tinyres exercise list)")
    p.add_argument("--file", default=None, help="your solution (default: ./NAME.py)")
    p.add_argument("--seed", type=int, default=0, help="the seed of the random inputs (default 0)")
    p.set_defaults(run=run)
    return p


def run(args):
    from . import EXERCISES, ExerciseError, check, get, stub
    from ...errors import UserError
    if args.action == "list":
        width = max(map(len, EXERCISES))
        for ex in EXERCISES.values():
            print(f"{ex.name:<{width}}  {ex.title}  ({ex.docs})")
        print("\nstart with: tinyres exercise show relu > relu.py; then: tinyres exercise check relu")
        return 0
    if args.name is None:
        raise UserError(f"tinyres exercise {args.action} needs the exercise's name: one of {', '.join(EXERCISES)}")
    try:
        get(args.name)
    except ExerciseError as e:
        raise UserError(str(e)) from None
    if args.action == "show":
        print(stub(args.name), end="")
        return 0
    report = check(args.name, Path(args.file) if args.file else None, seed=args.seed)
    print(report)
    return 0 if report.ok else 1
