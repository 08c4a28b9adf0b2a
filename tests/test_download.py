"""advlib.data.download (resume, verification, errors) and extract_release (safety, idempotence),
against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from advlib import data
from advlib.config import RELEASE_NAMES


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        if rng and srv.support_range:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        stall = srv.stall_after.pop(self.path, None)  # send some bytes, then go silent
        if stall is not None:
            self.wfile.write(payload[:stall])
            self.wfile.flush()
            srv.release.wait(10)
            self.close_connection = True
            return
        drop = srv.drop_after.pop(self.path, None)  # only the first request is cut short
        if drop is not None:
            self.wfile.write(payload[:drop])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.files, srv.requests, srv.drop_after, srv.stall_after, srv.support_range = {}, [], {}, {}, True
    srv.release = threading.Event()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    t.join(5)


@pytest.fixture
def release_tar(tmp_path_factory):
    """A tiny tarball in the authors' layout; returns (bytes, {short name: (images, labels)})."""
    root = tmp_path_factory.mktemp("release_src")
    g = torch.Generator().manual_seed(0)
    sets = {}
    for i, (short, rel) in enumerate(RELEASE_NAMES.items()):
        x = torch.rand(12 + i, 3, 32, 32, generator=g)
        y = torch.randint(0, 10, (12 + i,), generator=g)
        data.save_feature_dataset(root / "release_datasets" / rel, x, y, batch_size=5)
        sets[short] = (x, y)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(root / "release_datasets", arcname="release_datasets")
    return buf.getvalue(), sets


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


# ------------------------------------------------------------------------------------------------
# download
# ------------------------------------------------------------------------------------------------


def test_download_extract_load_round_trip(server, release_tar, tmp_path):
    body, sets = release_tar
    server.files["/datasets.tar"] = body
    dest = tmp_path / "data" / "datasets.tar"
    out = data.download(server.url + "/datasets.tar", dest, sha256=_sha(body), size=len(body), progress=False)
    assert out == dest and dest.read_bytes() == body
    assert not dest.with_name("datasets.tar.part").exists()
    found = data.extract_release(dest, tmp_path / "release")
    assert list(found) == ["d_robust", "d_non_robust", "d_rand", "d_det"]
    for short, (x, y) in sets.items():
        assert found[short] == tmp_path / "release" / "release_datasets" / RELEASE_NAMES[short]
        x2, y2 = data.load_feature_dataset(found[short])
        assert torch.equal(x2, x) and torch.equal(y2, y)


def test_dropped_connection_resumes_with_range(server, tmp_path):
    body = bytes(range(256)) * 400  # 102,400 bytes
    k = 30_000
    server.files["/f.bin"] = body
    server.drop_after["/f.bin"] = k
    dest = tmp_path / "f.bin"
    part = tmp_path / "f.bin.part"
    with pytest.raises(data.DownloadError, match="resume"):
        data.download(server.url + "/f.bin", dest, sha256=_sha(body), progress=False, chunk_size=4096)
    assert not dest.exists()
    assert part.stat().st_size == k and part.read_bytes() == body[:k]
    out = data.download(server.url + "/f.bin", dest, sha256=_sha(body), progress=False)
    assert server.requests == [("/f.bin", None), ("/f.bin", f"bytes={k}-")]
    assert _sha(out.read_bytes()) == _sha(body) and not part.exists()


def test_read_timeout_keeps_part_for_resume(server, tmp_path):
    body = b"x" * 50_000
    server.files["/f.bin"] = body
    server.stall_after["/f.bin"] = 20_000
    dest = tmp_path / "f.bin"
    with pytest.raises(data.DownloadError, match="lost after 20000 bytes.*resume"):
        data.download(server.url + "/f.bin", dest, progress=False, timeout=0.3)
    assert (tmp_path / "f.bin.part").stat().st_size == 20_000 and not dest.exists()
    data.download(server.url + "/f.bin", dest, size=len(body), progress=False)
    assert dest.read_bytes() == body and server.requests[-1] == ("/f.bin", "bytes=20000-")


def test_server_without_range_support_restarts(server, tmp_path):
    body = b"abcdefgh" * 5000
    server.files["/f.bin"] = body
    server.support_range = False
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"XXXX" * 100)  # stale partial data that must not be kept
    data.download(server.url + "/f.bin", dest, size=len(body), progress=False)
    assert dest.read_bytes() == body
    assert server.requests == [("/f.bin", "bytes=400-")]


def test_complete_part_is_finished_without_refetch(server, tmp_path):
    body = b"0123456789" * 100
    server.files["/f.bin"] = body
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(body)
    data.download(server.url + "/f.bin", dest, progress=False)  # server answers 416 with the total
    assert dest.read_bytes() == body
    assert server.requests == [("/f.bin", f"bytes={len(body)}-")]


def test_wrong_sha256_leaves_nothing(server, tmp_path):
    body = b"payload" * 1000
    server.files["/f.bin"] = body
    dest = tmp_path / "f.bin"
    with pytest.raises(ValueError) as ei:
        data.download(server.url + "/f.bin", dest, sha256="0" * 64, progress=False)
    assert "0" * 64 in str(ei.value) and _sha(body) in str(ei.value)  # expected vs got
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()


def test_size_mismatch(server, tmp_path):
    body = b"payload" * 1000
    server.files["/f.bin"] = body
    dest = tmp_path / "f.bin"
    with pytest.raises(ValueError, match=rf"expected {len(body) + 1} bytes, got {len(body)}"):
        data.download(server.url + "/f.bin", dest, size=len(body) + 1, progress=False)
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()


def test_http_404_is_clear(server, tmp_path):
    url = server.url + "/missing.tar"
    with pytest.raises(data.DownloadError) as ei:
        data.download(url, tmp_path / "x.tar", progress=False)
    assert "404" in str(ei.value) and url in str(ei.value)
    assert isinstance(ei.value, RuntimeError)
    assert not (tmp_path / "x.tar").exists()


def test_connection_refused_is_clear(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/f.bin"
    with pytest.raises(data.DownloadError, match=re.escape(url)):
        data.download(url, tmp_path / "f.bin", progress=False, timeout=5)


def test_present_verified_file_makes_no_request(server, tmp_path):
    body = b"already here" * 10
    server.files["/f.bin"] = b"different bytes"
    dest = tmp_path / "f.bin"
    dest.write_bytes(body)
    assert data.download(server.url + "/f.bin", dest, sha256=_sha(body), size=len(body), progress=False) == dest
    assert server.requests == [] and dest.read_bytes() == body


def test_present_bad_file_is_replaced(server, tmp_path):
    body = b"good bytes" * 10
    server.files["/f.bin"] = body
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"corrupt")
    data.download(server.url + "/f.bin", dest, sha256=_sha(body), progress=False)
    assert dest.read_bytes() == body and len(server.requests) == 1


# ------------------------------------------------------------------------------------------------
# extract_release
# ------------------------------------------------------------------------------------------------


def _tar_with(tmp_path: Path, release_body: bytes, bad: tarfile.TarInfo, payload: bytes = b"") -> Path:
    """The valid release plus one extra (unsafe) member appended at the end."""
    path = tmp_path / "bad.tar"
    with tarfile.open(fileobj=io.BytesIO(release_body)) as src, tarfile.open(path, "w") as dst:
        for m in src.getmembers():
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
        bad.size = len(payload) if bad.isfile() else 0
        dst.addfile(bad, io.BytesIO(payload) if bad.isfile() else None)
    with tarfile.open(path) as t:  # the unsafe name really is in the archive as written
        assert bad.name in t.getnames()
    return path


def _info(name, type_=tarfile.REGTYPE, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.linkname = linkname
    ti.mode = 0o644
    return ti


@pytest.mark.parametrize(
    "bad, reason",
    [
        (_info("../evil"), "'..'"),
        (_info("release_datasets/../../evil"), "'..'"),
        (_info("/abs/path"), "absolute"),
        (_info("release_datasets/link", tarfile.SYMTYPE, "/etc/passwd"), "symlink"),
        (_info("release_datasets/inner_link", tarfile.SYMTYPE, "d_robust_CIFAR/CIFAR_ims"), "symlink"),
        (_info("release_datasets/hard", tarfile.LNKTYPE, "release_datasets/d_robust_CIFAR/CIFAR_ims"), "hardlink"),
        (_info("release_datasets/fifo", tarfile.FIFOTYPE), "device or fifo"),
        (_info("release_datasets/dev", tarfile.CHRTYPE), "device or fifo"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink-out", "symlink-in", "hardlink", "fifo", "chardev"],
)
def test_extract_refuses_unsafe_members(tmp_path, release_tar, bad, reason):
    tar_path = _tar_with(tmp_path, release_tar[0], bad, payload=b"evil" if bad.isfile() else b"")
    dest = tmp_path / "out"
    with pytest.raises(ValueError) as ei:
        data.extract_release(tar_path, dest)
    assert repr(bad.name) in str(ei.value) and reason in str(ei.value), str(ei.value)
    assert not dest.exists() or not any(dest.rglob("*"))  # nothing at all was extracted
    assert not (tmp_path / "evil").exists()


def test_extract_is_idempotent_and_repairs(tmp_path, release_tar):
    tar_path = tmp_path / "datasets.tar"
    tar_path.write_bytes(release_tar[0])
    dest = tmp_path / "release"
    first = data.extract_release(tar_path, dest)
    stamps = {p: p.stat().st_mtime_ns for p in dest.rglob("CIFAR_*")}
    assert len(stamps) == 8
    inodes = {p: p.stat().st_ino for p in stamps}
    assert data.extract_release(tar_path, dest) == first
    assert {p: p.stat().st_ino for p in dest.rglob("CIFAR_*")} == inodes  # nothing rewritten
    # a truncated file is detected and its dataset re-extracted
    broken = first["d_rand"] / "CIFAR_ims"
    broken.write_bytes(broken.read_bytes()[:100])
    assert data.extract_release(tar_path, dest) == first
    x, y = data.load_feature_dataset(first["d_rand"])
    assert torch.equal(x, release_tar[1]["d_rand"][0]) and torch.equal(y, release_tar[1]["d_rand"][1])
    leftovers = [p.name for p in (dest / "release_datasets").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_extract_partial_release_and_errors(tmp_path, release_tar):
    # only two datasets present -> only those keys
    src = tarfile.open(fileobj=io.BytesIO(release_tar[0]))
    path = tmp_path / "two.tar"
    with tarfile.open(path, "w") as dst:
        for m in src.getmembers():
            if "drand" in m.name or "ddet" in m.name:
                continue
            dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    assert list(data.extract_release(path, tmp_path / "o")) == ["d_robust", "d_non_robust"]
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w") as dst:
        dst.addfile(_info("readme.txt"), io.BytesIO(b""))
    with pytest.raises(ValueError, match="no dataset found"):
        data.extract_release(empty, tmp_path / "o2")
    with pytest.raises(FileNotFoundError, match="nope.tar"):
        data.extract_release(tmp_path / "nope.tar", tmp_path / "o3")


def test_cli_corrupt_tarball_is_one_clear_line(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    bad = tmp_path / "datasets.tar"
    bad.write_bytes(b"this is not a tar archive" * 100)
    with pytest.raises(ValueError, match="datasets.tar: not a readable tar archive"):
        data.extract_release(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("CIFAR_ims"))
    # through the command line: the tarball is already there (its size is not checked without --sha256)
    proc = subprocess.run([sys.executable, "-c", "import sys; from advlib.__main__ import _main; "
                           "from advlib import data; data.download = lambda url, dest, **kw: dest; "
                           f"sys.exit(_main(['download', '--release', '--root', {str(tmp_path)!r}]))"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1, proc.stderr
    assert "not a readable tar archive" in proc.stderr and "Traceback" not in proc.stderr


def test_unreadable_image_in_a_zip_names_the_member(tmp_path):
    import zipfile

    from advlib.data import load_cifar10

    z = tmp_path / "c.zip"
    with zipfile.ZipFile(z, "w") as f:
        for c in range(10):
            for i in range(2):
                name = f"cifar10/train/class{c}/{i:04d}.png"
                if (c, i) == (3, 1):
                    f.writestr(name, b"garbage, not a png")
                else:
                    f.writestr(name, _png(c))
    with pytest.raises(ValueError, match=r"cifar10/train/class3/0001.png: not a readable image"):
        load_cifar10(z, "train")


def _png(c: int) -> bytes:
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 20 * c, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
