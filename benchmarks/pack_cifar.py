"""CIFAR-10's JPEG zip small enough to travel to the device machine, and back into a zip there.

The shared JPEG zip (``cifar10-jpeg.zip``, 63.2 MB, stored uncompressed) and this repository's
files together exceed the 64 MiB that travel with a device run. Most of each 32x32 JPEG is the same
headers (quantization and Huffman tables), which a solid archive compresses away: the same JPEG
bytes under the same names fit in a tar.xz of about a third the size. The device run unpacks it
into a plain (stored) zip, in the source's member order and with its members' dates and modes, so
the zip it writes is the shared zip byte for byte (its sha256 is checked against the source's):
``advlib.data.load_cifar10`` reads the same images, labels and seeded picks.

    python -m benchmarks.pack_cifar pack ../shared/data/cifar10-jpeg.zip .gpu/cifar10-jpeg.tar.xz
    python -m benchmarks.pack_cifar unpack .gpu/cifar10-jpeg.tar.xz /tmp/gpu_run/cifar10-jpeg.zip [--json F]

``pack`` writes a manifest first in the archive (member count, bytes, a digest over every member's
name and sha256, the source zip's sha256 and its members' zip attributes); ``unpack`` recomputes
the digest over what it writes and exits non-zero when it differs, so a truncated or altered
archive never reaches a run, and says whether the zip it wrote is identical to the source
(``identical_to_source``; the images are the same either way).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
import time
import zipfile
from pathlib import Path

MANIFEST = "cifar10-manifest.json"  # the archive's first member


ZIP_FIELDS = ("date_time", "external_attr", "create_system", "create_version", "extract_version", "flag_bits")


class Digest:
    """sha256 over each member's name and the sha256 of its bytes, by sorted name (any order in)."""

    def __init__(self):
        self._lines: list[str] = []
        self.bytes = 0

    def add(self, name: str, data: bytes) -> None:
        self._lines.append(f"{name}\0{hashlib.sha256(data).hexdigest()}\n")
        self.bytes += len(data)

    def record(self) -> dict:
        h = hashlib.sha256("".join(sorted(self._lines)).encode())
        return {"members": len(self._lines), "bytes": self.bytes, "digest": h.hexdigest()}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _zip_attrs(info: zipfile.ZipInfo) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in ((k, getattr(info, k)) for k in ZIP_FIELDS)}


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0  # nothing of the packing machine in the archive
    return info


def pack(src: Path, dst: Path, preset: int = 6) -> dict:
    """The files of the zip ``src`` (in its order) into the solid tar.xz ``dst``, manifest first."""
    t0 = time.perf_counter()
    with zipfile.ZipFile(src) as z:
        infos = [i for i in z.infolist() if not i.is_dir()]
        names = [i.filename for i in infos]
        digest = Digest()
        for name in names:
            digest.add(name, z.read(name))
        attrs = [_zip_attrs(i) for i in infos]
        same = all(a == attrs[0] for a in attrs)  # CIFAR-10's zip: one date and mode for every member
        manifest = {"source": src.name, "source_sha256": file_sha256(src), **digest.record(),
                    "zip_attrs": attrs[0] if same and attrs else None,
                    "only_files": len(infos) == len(z.infolist())}
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".part")
        with tarfile.open(tmp, "w:xz", preset=preset, format=tarfile.PAX_FORMAT) as tar:
            blob = json.dumps(manifest, indent=1).encode()
            tar.addfile(_tarinfo(MANIFEST, len(blob)), io.BytesIO(blob))
            for name in names:
                data = z.read(name)
                tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))
        tmp.replace(dst)
    return {**manifest, "archive_bytes": dst.stat().st_size, "seconds": round(time.perf_counter() - t0, 2)}


def unpack(src: Path, dst: Path) -> dict:
    """The tar.xz ``src`` into the stored zip ``dst``; raises when its digest differs from the manifest."""
    t0 = time.perf_counter()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".part")
    digest, manifest, attrs = Digest(), None, None
    try:
        with tarfile.open(src, "r:xz") as tar, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
            for member in tar:
                if not member.isfile():
                    continue
                data = tar.extractfile(member).read()
                if member.name == MANIFEST:
                    manifest = json.loads(data)
                    attrs = manifest.get("zip_attrs")
                    continue
                if manifest is None:
                    raise ValueError(f"{src}: no {MANIFEST} first (not written by `python -m benchmarks.pack_cifar pack`)")
                if member.name.startswith("/") or ".." in member.name.split("/"):
                    raise ValueError(f"{src}: member {member.name!r} is not a relative path inside the archive")
                digest.add(member.name, data)
                info = zipfile.ZipInfo(member.name, date_time=tuple(attrs["date_time"]) if attrs else (1980, 1, 1, 0, 0, 0))
                for k in ZIP_FIELDS[1:] if attrs else ():
                    setattr(info, k, attrs[k])
                z.writestr(info, data)
        if manifest is None:
            raise ValueError(f"{src}: no {MANIFEST} (not written by `python -m benchmarks.pack_cifar pack`)")
        got = digest.record()
        if {k: manifest.get(k) for k in got} != got:
            raise ValueError(f"{src}: unpacked {got} but the manifest says "
                             f"{ {k: manifest.get(k) for k in got} }: the archive is damaged")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(dst)
    sha = file_sha256(dst)
    return {**got, "matches_manifest": True, "source": manifest.get("source"), "zip_sha256": sha,
            "identical_to_source": sha == manifest.get("source_sha256"), "zip_bytes": dst.stat().st_size,
            "seconds": round(time.perf_counter() - t0, 2)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="zip -> solid tar.xz (here, before a device run)")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--preset", type=int, default=6, help="xz preset 0-9 (default 6)")
    u = sub.add_parser("unpack", help="tar.xz -> stored zip (on the device)")
    u.add_argument("src")
    u.add_argument("dst")
    u.add_argument("--json", default="", help="also write the summary to this file")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "pack":
            out = pack(Path(args.src), Path(args.dst), args.preset)
        else:
            out = unpack(Path(args.src), Path(args.dst))
    except (OSError, ValueError, tarfile.TarError, zipfile.BadZipFile) as e:
        print(f"pack_cifar {args.cmd}: error: {e}", file=sys.stderr)
        return 1
    text = json.dumps(out, indent=1)
    if getattr(args, "json", ""):
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
