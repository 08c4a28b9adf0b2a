"""Build the embedded CIFAR-10 sample ``advlib/sample/cifar10-sample.zip``.

Takes a seeded subset of 60 train + 20 test images per class from the JPEG mirror of CIFAR-10
(``../shared/data/cifar10-jpeg.zip``) and copies the JPEG bytes unchanged into an uncompressed
zip with the same layout, ``cifar10/{train,test}/<class>/NNNN.jpg``. The output is byte-for-byte
reproducible (sorted members, fixed timestamps).

    python -m tools.make_sample [--src PATH] [--out PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PER_CLASS = {"train": 60, "test": 20}  # images per class in each split


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=REPO.parent / "shared" / "data" / "cifar10-jpeg.zip")
    ap.add_argument("--out", type=Path, default=REPO / "advlib" / "sample" / "cifar10-sample.zip")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    with zipfile.ZipFile(args.src) as src:
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for name in src.namelist():
            parts = name.split("/")
            if len(parts) == 4 and parts[1] in PER_CLASS and parts[3].lower().endswith(".jpg"):
                groups[(parts[1], parts[2])].append(name)
        classes = sorted({c for _, c in groups})
        if len(classes) != 10:
            raise SystemExit(f"{args.src}: expected 10 class folders, found {classes}")
        rng = np.random.default_rng(args.seed)
        chosen = []
        for split in ("train", "test"):  # fixed order so the seed means the same thing every time
            for cls in classes:
                names = sorted(groups[(split, cls)])
                pick = rng.choice(len(names), PER_CLASS[split], replace=False)
                chosen += [names[i] for i in sorted(pick)]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_name(args.out.name + ".tmp")
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as dst:
            for name in sorted(chosen):
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                dst.writestr(info, src.read(name))
        tmp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes, {len(chosen)} images)")
    return args.out


if __name__ == "__main__":
    main()
