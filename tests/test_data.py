"""advlib.data: CIFAR-10 sources and the feature-dataset files (CIFAR_ims / CIFAR_lab)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from advlib import data
from advlib.data import cifar

# ------------------------------------------------------------------------------------------------
# feature datasets
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def feature_pair():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(23, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (23,), generator=g)
    return x, y


def _write(folder: Path, ims, lab):
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(ims, folder / "CIFAR_ims")
    torch.save(lab, folder / "CIFAR_lab")
    return folder


def test_save_load_round_trip_exact(tmp_path, feature_pair):
    x, y = feature_pair
    out = data.save_feature_dataset(tmp_path / "ds", x, y, meta={"model": "tiny", "eps": 0.5}, batch_size=10)
    # release layout: lists of batch tensors, each owning its storage
    ims = torch.load(out / "CIFAR_ims", weights_only=True)
    assert isinstance(ims, list) and [b.shape[0] for b in ims] == [10, 10, 3]
    assert json.loads((out / "meta.json").read_text()) == {"eps": 0.5, "model": "tiny"}
    x2, y2 = data.load_feature_dataset(out)
    assert x2.dtype == torch.float32 and y2.dtype == torch.int64
    assert torch.equal(x2, x) and torch.equal(y2, y)
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())  # atomic writes leave no temp files


def test_load_accepts_single_tensor_and_converts_dtypes(tmp_path, feature_pair):
    x, y = feature_pair
    _write(tmp_path, x.double(), y.int())
    x2, y2 = data.load_feature_dataset(tmp_path)
    assert x2.dtype == torch.float32 and y2.dtype == torch.int64
    assert torch.allclose(x2, x) and torch.equal(y2, y)


def test_load_clamps_round_off_within_tolerance(tmp_path, feature_pair):
    x, y = feature_pair
    x = x.clone()
    x[0, 0, 0, 0] = 1 + 5e-7
    x[0, 0, 0, 1] = -5e-7
    _write(tmp_path, [x], [y])
    x2, _ = data.load_feature_dataset(tmp_path)
    assert float(x2.max()) <= 1.0 and float(x2.min()) >= 0.0


@pytest.mark.parametrize(
    "case, bad_file, needle",
    [
        ("shape", "CIFAR_ims", "[N,3,32,32]"),
        ("range", "CIFAR_ims", "[0,1]"),
        ("nan", "CIFAR_ims", "non-finite"),
        ("uint8", "CIFAR_ims", "float"),
        ("label10", "CIFAR_lab", "[0,9]"),
        ("label2d", "CIFAR_lab", "1-D"),
        ("labelfloat", "CIFAR_lab", "integer"),
        ("length", "CIFAR_lab", "equal lengths"),
        ("notensor", "CIFAR_ims", "list of batch tensors"),
    ],
)
def test_load_rejects_bad_contents(tmp_path, feature_pair, case, bad_file, needle):
    x, y = feature_pair
    x, y = x.clone(), y.clone()
    if case == "shape":
        x = torch.rand(23, 3, 28, 28)
    elif case == "range":
        x[3] *= 2.0
        x[3, 0, 0, 0] = 1.5
    elif case == "nan":
        x[5, 1, 2, 3] = float("nan")
    elif case == "uint8":
        x = (x * 255).to(torch.uint8)
    elif case == "label10":
        y[7] = 10
    elif case == "label2d":
        y = y[:, None]
    elif case == "labelfloat":
        y = y.float()
    elif case == "length":
        y = y[:-1]
    elif case == "notensor":
        x = {"images": x}
    folder = _write(tmp_path / case, [x] if isinstance(x, torch.Tensor) else x, [y])
    with pytest.raises(ValueError) as ei:
        data.load_feature_dataset(folder)
    msg = str(ei.value)
    assert str(folder / bad_file) in msg, msg
    assert needle in msg, msg


def test_save_validates_too(tmp_path, feature_pair):
    x, y = feature_pair
    with pytest.raises(ValueError, match=r"CIFAR_lab.*\[0,9\]"):
        data.save_feature_dataset(tmp_path / "ds", x, y + 10)
    assert not (tmp_path / "ds" / "CIFAR_ims").exists()  # nothing written when the input is invalid


@pytest.mark.parametrize("missing", ["CIFAR_ims", "CIFAR_lab"])
def test_load_missing_file_names_it(tmp_path, feature_pair, missing):
    folder = data.save_feature_dataset(tmp_path / "ds", *feature_pair)
    (folder / missing).unlink()
    with pytest.raises(FileNotFoundError, match=str(folder / missing)):
        data.load_feature_dataset(folder)


def _write_marker(path):
    Path(path).write_text("pwned")
    return torch.zeros(1)


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (_write_marker, (self.marker,))


def test_malicious_pickle_is_refused_without_running(tmp_path, feature_pair):
    x, y = feature_pair
    # positive control: the payload really runs when unpickled without weights_only
    control = tmp_path / "control_marker"
    torch.save(_Evil(control), tmp_path / "control.pt")
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert control.read_text() == "pwned"

    marker = tmp_path / "marker"
    folder = tmp_path / "evil"
    folder.mkdir()
    torch.save(_Evil(marker), folder / "CIFAR_ims")
    torch.save([y], folder / "CIFAR_lab")
    with pytest.raises(ValueError) as ei:
        data.load_feature_dataset(folder)
    assert str(folder / "CIFAR_ims") in str(ei.value)
    assert "weights_only" in str(ei.value)
    assert not marker.exists()


def test_dataset_summary(feature_pair):
    x, y = feature_pair
    s = data.dataset_summary(x, y)
    assert s["n"] == 23 and sum(s["counts"]) == 23 and len(s["counts"]) == 10
    assert s["counts"] == torch.bincount(y, minlength=10).tolist()
    assert s["mean"] == pytest.approx(float(x.mean()), abs=1e-6)
    assert s["min"] >= 0 and s["max"] <= 1 and s["std"] == pytest.approx(float(x.std()), abs=1e-6)
    json.dumps(s)  # plain numbers only


# ------------------------------------------------------------------------------------------------
# CIFAR-10
# ------------------------------------------------------------------------------------------------


def test_sample_zip_layout():
    assert data.SAMPLE_ZIP.is_file()
    with zipfile.ZipFile(data.SAMPLE_ZIP) as z:
        infos = z.infolist()
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
    assert all(i.filename.startswith(("cifar10/train/", "cifar10/test/")) and i.filename.endswith(".jpg")
               for i in infos)
    assert len(infos) == 800
    assert data.SAMPLE_ZIP.stat().st_size < 2_000_000


@pytest.mark.parametrize("split, per_class", [("train", 60), ("test", 20)])
def test_sample_full_split(split, per_class):
    x, y = data.load_cifar10("sample", split)
    assert x.shape == (10 * per_class, 3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and torch.bincount(y, minlength=10).tolist() == [per_class] * 10
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert 0.3 < float(x.mean()) < 0.7  # real photos, not blank or noise
    assert float(x.std()) > 0.15


def test_sample_subset_seeded_balanced():
    x1, y1 = data.load_cifar10("sample", "train", n=53, seed=4)
    x2, y2 = data.load_cifar10("sample", "train", n=53, seed=4)
    x3, y3 = data.load_cifar10("sample", "train", n=53, seed=5)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert torch.bincount(y1, minlength=10).tolist() == [6, 6, 6, 5, 5, 5, 5, 5, 5, 5]
    assert torch.equal(torch.bincount(y1), torch.bincount(y3))  # same class counts ...
    assert not torch.equal(x1, x3)  # ... but different images
    # a subset is made of images of the full split
    xf, yf = data.load_cifar10("sample", "train")
    flat = xf.flatten(1)
    for i in range(0, 53, 7):
        match = (flat == x1[i].flatten()).all(dim=1).nonzero().flatten()
        assert len(match) == 1 and yf[match[0]] == y1[i]


def test_subset_too_large_is_clear():
    with pytest.raises(ValueError, match=r"n=300 needs 30 images of class 0 but only 20"):
        data.load_cifar10("sample", "test", n=300)


def test_shared_zip_subset_decodes_only_needed(shared_zip, monkeypatch):
    calls = []
    real = cifar._decode_image

    def counting(b, name):
        calls.append(name)
        return real(b, name)

    monkeypatch.setattr(cifar, "_decode_image", counting)  # looked up by cifar._load_archive
    x, y = data.load_cifar10(shared_zip, "train", n=200, seed=0)
    assert len(calls) == 200 and len(set(calls)) == 200
    assert all("/train/" in c for c in calls)
    assert x.shape == (200, 3, 32, 32) and torch.bincount(y, minlength=10).tolist() == [20] * 10
    # labels follow the class folder of each decoded member (alphabetical = CIFAR-10 order)
    from advlib.config import CIFAR10_CLASSES

    folder_labels = [CIFAR10_CLASSES.index(c.split("/")[-2]) for c in calls]
    assert sorted(folder_labels) == sorted(y.tolist())
    x2, _ = data.load_cifar10(str(shared_zip), "train", n=200, seed=0)
    assert torch.equal(x, x2)


def test_directory_source_matches_zip(tmp_path):
    with zipfile.ZipFile(data.SAMPLE_ZIP) as z:
        members = [n for n in z.namelist() if n.startswith("cifar10/test/")]
        z.extractall(tmp_path / "deep" / "copy", members=members)
    root = tmp_path / "deep"
    (root / "copy" / "cifar10" / "test" / ".DS_Store").write_bytes(b"junk")  # ignored
    xd, yd = data.load_cifar10(root, "test")
    xz, yz = data.load_cifar10("sample", "test")
    assert torch.equal(xd, xz) and torch.equal(yd, yz)
    xd, yd = data.load_cifar10(root, "test", n=30, seed=2)
    xz, yz = data.load_cifar10("sample", "test", n=30, seed=2)
    assert torch.equal(xd, xz) and torch.equal(yd, yz)


def test_bad_sources_are_clear(tmp_path):
    missing = tmp_path / "nope.zip"
    with pytest.raises(ValueError, match=f"{missing}.*does not exist"):
        data.load_cifar10(missing)
    with zipfile.ZipFile(data.SAMPLE_ZIP) as z:
        z.extractall(tmp_path / "onlytest", members=[n for n in z.namelist() if "/test/" in n])
    with pytest.raises(ValueError, match=r"no 'train' folder.*<split>|no 'train' folder"):
        data.load_cifar10(tmp_path / "onlytest", "train")
    nine = tmp_path / "nine"
    with zipfile.ZipFile(data.SAMPLE_ZIP) as z:
        z.extractall(nine, members=[n for n in z.namelist() if "/test/" in n and "/truck/" not in n])
    with pytest.raises(ValueError, match=r"9 class folders.*expected 10"):
        data.load_cifar10(nine, "test")
    (tmp_path / "notzip.txt").write_text("hello")
    with pytest.raises(ValueError, match="neither a folder nor a zip"):
        data.load_cifar10(tmp_path / "notzip.txt")
    with pytest.raises(ValueError, match="split must be one of"):
        data.load_cifar10("sample", "valid")


def test_torchvision_source(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="root="):
        data.load_cifar10("torchvision", "train")

    import torchvision.datasets

    seen = {}

    class FakeCIFAR10:
        def __init__(self, root, train, download):
            seen.update(root=root, train=train, download=download)
            rng = np.random.default_rng(0)
            self.data = rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
            self.targets = [i % 10 for i in range(40)]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    x, y = data.load_cifar10("torchvision", "test", root=tmp_path, download=False)
    assert seen == {"root": str(tmp_path), "train": False, "download": False}
    ref = FakeCIFAR10(tmp_path, False, False)
    perm = torch.randperm(40, generator=torch.Generator().manual_seed(0))  # the documented seeded shuffle
    assert torch.equal(x, (torch.from_numpy(ref.data).permute(0, 3, 1, 2).float() / 255)[perm])
    assert y.tolist() == torch.tensor(ref.targets)[perm].tolist()
    xs, ys = data.load_cifar10("torchvision", "train", n=20, seed=1, root=tmp_path)
    assert torch.bincount(ys, minlength=10).tolist() == [2] * 10 and xs.shape == (20, 3, 32, 32)


def test_torchvision_missing_cache_is_clear(tmp_path):
    assert not data.cifar10_cache_present(tmp_path)
    with pytest.raises(RuntimeError, match=str(tmp_path)):
        data.load_cifar10("torchvision", "test", root=tmp_path, download=False)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (d / f).write_bytes(b"")
    assert data.cifar10_cache_present(tmp_path)


def test_order_is_a_seeded_shuffle_so_prefixes_cover_the_classes():
    """Archives list images class by class; x[:k] of the loaded split must not be one class."""
    x1, y1 = data.load_cifar10("sample", "train", seed=0)
    x2, y2 = data.load_cifar10("sample", "train", seed=0)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert len(torch.unique(y1[:30])) >= 6
    _, y3 = data.load_cifar10("sample", "train", seed=1)
    assert not torch.equal(y1, y3) and torch.equal(torch.bincount(y1), torch.bincount(y3))


def test_validation_split_is_held_out_of_the_training_pick():
    """split "val" holds images of the training folder that the training pick of the same n never
    uses; the training pick itself does not depend on val; both are class-balanced."""
    x_tr, y_tr = data.load_cifar10("sample", "train", n=300, seed=3)
    x_tr2, _ = data.load_cifar10("sample", "train", n=300, seed=3, val=100)
    x_va, y_va = data.load_cifar10("sample", "val", n=300, seed=3, val=100)
    assert torch.equal(x_tr, x_tr2)
    assert torch.bincount(y_va, minlength=10).tolist() == [10] * 10
    train_rows = {bytes(r.numpy().tobytes()) for r in x_tr.flatten(1)}
    assert not any(bytes(r.numpy().tobytes()) in train_rows for r in x_va.flatten(1))
    # n = 0: every training image but the validation ones
    x_all, _ = data.load_cifar10("sample", "train", val=100, seed=3)
    assert len(x_all) == 600 - 100
    with pytest.raises(ValueError, match="split 'val' needs val > 0"):
        data.load_cifar10("sample", "val", n=300)
    with pytest.raises(ValueError, match=r"n=590 training and val=100 validation images needs 69"):
        data.load_cifar10("sample", "train", n=590, val=100)
