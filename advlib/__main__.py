"""Command line: ``python -m advlib run|table|report|download|profiles``."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from . import config, dotted


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m advlib", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="papermill the notebooks in order into a run directory")
    r.add_argument("--profile", default="smoke", choices=config.PROFILE_NAMES)
    r.add_argument("--out", default=None, help="run directory (default runs/demo for smoke, runs/<profile> otherwise)")
    r.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="profile key or notebook parameter, e.g. -p sets.rnr.epochs 3 -p cifar_source path/to.zip "
                   "(python -m advlib profiles lists the keys)")
    r.add_argument("--notebooks", nargs="*", default=None, help="only these notebooks (name prefixes, e.g. 01 04)")
    r.add_argument("--quiet", action="store_true", help="do not stream the cells' output (progress) to the console")

    d = sub.add_parser("download", help="fetch CIFAR-10 (torchvision) and/or the authors' release tarball")
    d.add_argument("--root", default="data", help="folder for CIFAR-10 and the tarball")
    d.add_argument("--cifar", action="store_true", help="download CIFAR-10 through torchvision")
    d.add_argument("--release", action="store_true", help="download and extract the authors' tarball")
    d.add_argument("--url", default=config.RELEASE_URL)
    d.add_argument("--sha256", default=None)

    pr = sub.add_parser("profiles", help="print the profiles as trees (groups indented, one line per recipe)")
    pr.add_argument("names", nargs="*", metavar="NAME", help=f"only these profiles (of {', '.join(config.PROFILE_NAMES)})")
    pr.add_argument("--json", action="store_true", help="as JSON (Profile.to_dict), the form results.json records")

    h = sub.add_parser("report", help="(re)build <run>/report.html from the run's executed report notebook")
    h.add_argument("run_dir", help="the run directory")
    h.add_argument("--code", action="store_true", help="keep the code cells (default: outputs and markdown only)")

    t = sub.add_parser("table", help="print a run's markdown tables from its results.json (what the README quotes)")
    t.add_argument("results", help="path to a results.json (or the run directory holding it)")
    return ap


# headings of the tree, by the profile field they start with
TREE_SECTIONS = {"cifar_source": "data", "arch": "models and training (SGD; the recipes share the settings above them)",
                 "construct_n": "construction", "eval_eps": "evaluation", "relabel_epochs": "controls and transfer",
                 "beyond": "beyond the paper's questions (notebook 10)",
                 "seed": "runtime"}


def profile_tree(p) -> str:
    """The profile as a tree: its fields by section, each recipe on one line (as ``-p`` keys)."""
    lines = [f"{p.name}"]
    for f in dataclasses.fields(p):
        if f.name in TREE_SECTIONS:
            lines.append(f"  {TREE_SECTIONS[f.name]}")
        value = getattr(p, f.name)
        if f.name == "name":
            continue
        if dataclasses.is_dataclass(value):
            lines.append(f"    {f.name}")
            for g in dataclasses.fields(value):
                r = getattr(value, g.name)
                if r is not None and not dataclasses.is_dataclass(r):  # a plain value of a group (beyond)
                    lines.append(f"      {g.name:22s} {dotted.text(r)}")
                    continue
                text = r.line() if r is not None else "none: the targeted sets attack sources.standard"
                if r is not None and f.name == "sources" and g.name == "targeted" and not r.epochs:
                    text += "  (epochs 0: the targeted sets attack sources.standard)"
                lines.append(f"      {g.name:10s} {text}")
        else:
            lines.append(f"    {f.name:20s} {dotted.text(value)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # e.g. `python -m advlib profiles | head`: the reader left, nothing to report
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        return 0


def _main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "run":
        from .runner import main_run

        return main_run(args)
    if args.cmd == "report":
        from . import htmlreport

        try:
            print(f"wrote {htmlreport.write(args.run_dir, code=args.code)}")
        except (OSError, ValueError) as e:
            print(f"advlib report: error: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "table":
        from pathlib import Path

        from . import results, tables

        path = Path(args.results)
        if path.is_dir():
            path = path / "results.json"
        try:
            print(tables.render(results.load_results(path)), end="")
        except (OSError, ValueError) as e:
            print(f"advlib table: error: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "profiles":
        names = args.names or config.PROFILE_NAMES
        unknown = [n for n in names if n not in config.PROFILE_NAMES]
        if unknown:
            print(f"advlib profiles: error: unknown profile(s) {unknown}; expected names from {config.PROFILE_NAMES}",
                  file=sys.stderr)
            return 2
        for i, name in enumerate(names):
            prof = config.get_profile(name)
            print(f"# {name}\n{prof.to_json()}" if args.json else ("\n" if i else "") + profile_tree(prof))
        return 0
    if args.cmd == "download":
        import tarfile
        from pathlib import Path

        from . import data

        root = Path(args.root)
        if not (args.cifar or args.release):
            print("advlib download: say what to fetch: --cifar and/or --release", file=sys.stderr)
            return 2
        try:
            if args.cifar:
                for split in ("train", "test"):
                    x, _ = data.load_cifar10("torchvision", split, root=root)
                    print(f"CIFAR-10 {split}: {len(x)} images in {root}")
            if args.release:
                tar = data.download(args.url, root / "datasets.tar", sha256=args.sha256)
                for name, path in data.extract_release(tar, root / "release").items():
                    print(f"{name}: {path}")
        except (data.DownloadError, ValueError, OSError, tarfile.TarError) as e:
            print(f"advlib download: error: {e}", file=sys.stderr)
            return 1
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
