"""Data: CIFAR-10, the authors' release tarball, and "feature datasets" on disk.

- :mod:`advlib.data.cifar`: ``load_cifar10(source, split, n=, seed=)`` -> images float32
  [N,3,32,32] in [0,1], labels int64 [N] from torchvision, the embedded sample, or any zip/folder
  laid out ``<split>/<class>/<image>``; ``cifar10_cache_present``, ``dataset_summary``.
- :mod:`advlib.data.release`: ``download(url, dest, sha256=, size=)``, a resumable HTTP download
  with size/sha256 check; ``extract_release(tar_path, dest)``, safe extraction of
  ``release_datasets/<name>_CIFAR/...``.
- :mod:`advlib.data.features`: ``load_feature_dataset(path)`` / ``save_feature_dataset(path,
  images, labels)``: the release layout, ``CIFAR_ims`` + ``CIFAR_lab`` (each a ``torch.save``d list
  of batch tensors), loaded with ``weights_only=True`` only, and checked (shape, dtype, range,
  labels) with errors naming the file.
- ``BatchLoader``, the in-memory batch loader of :mod:`advlib.loader`, re-exported.

Nothing happens at import time; heavy or optional imports (torchvision, requests, tqdm) are
made inside the functions that need them.
"""

from __future__ import annotations

from ..loader import BatchLoader
from .cifar import SAMPLE_ZIP, cifar10_cache_present, dataset_summary, load_cifar10
from .features import load_feature_dataset, save_feature_dataset
from .release import DownloadError, download, extract_release

__all__ = [
    "BatchLoader", "SAMPLE_ZIP", "DownloadError", "load_cifar10", "cifar10_cache_present", "dataset_summary", "download",
    "extract_release", "load_feature_dataset", "save_feature_dataset",
]
