"""Command line: ``python -m advlib run|table|download|profiles``."""

from __future__ import annotations

import argparse
import sys

from . import config


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m advlib", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="papermill the notebooks in order into a run directory")
    r.add_argument("--profile", default="smoke", choices=config.PROFILE_NAMES)
    r.add_argument("--out", default=None, help="run directory (default runs/demo for smoke, runs/<profile> otherwise)")
    r.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="profile field or notebook parameter, e.g. -p epochs 3 -p cifar_source path/to.zip")
    r.add_argument("--notebooks", nargs="*", default=None, help="only these notebooks (name prefixes, e.g. 01 04)")
    r.add_argument("--quiet", action="store_true", help="do not stream the cells' output (progress) to the console")

    d = sub.add_parser("download", help="fetch CIFAR-10 (torchvision) and/or the authors' release tarball")
    d.add_argument("--root", default="data", help="folder for CIFAR-10 and the tarball")
    d.add_argument("--cifar", action="store_true", help="download CIFAR-10 through torchvision")
    d.add_argument("--release", action="store_true", help="download and extract the authors' tarball")
    d.add_argument("--url", default=config.RELEASE_URL)
    d.add_argument("--sha256", default=None)

    sub.add_parser("profiles", help="print the profiles as JSON")

    t = sub.add_parser("table", help="print a run's markdown tables from its results.json (what the README quotes)")
    t.add_argument("results", help="path to a results.json (or the run directory holding it)")
    return ap


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
        for name in config.PROFILE_NAMES:
            print(f"# {name}\n{config.get_profile(name).to_json()}")
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
