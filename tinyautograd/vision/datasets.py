"""MNIST and Fashion-MNIST, read from the standard IDX files in torchvision's folder layout, plus a bundled subset.

``torchvision.datasets.MNIST`` / ``FashionMNIST`` with the same signature::

    MNIST(root=None, train=True, transform=None, target_transform=None, download=False)

Three ways to get data:

* ``MNIST(root=None)`` or ``MNIST.bundled(train=True)`` -- **offline, no files needed**: 5,000 real MNIST digits
  shipped inside this package (``vision/data/mnist_subset.npz``), split 4,000 train / 1,000 test with 400 / 100
  images of every digit. See ``vision/data/MNIST-ATTRIBUTION.txt`` for the source and licence (MNIST by Yann
  LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0) and ``scripts/make_bundled_mnist.py`` for
  how it was made.
* ``MNIST(root)`` -- the full 60,000 / 10,000 digits from ``root/MNIST/raw/`` (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each plain or ``.gz``):
  exactly where torchvision keeps them, so a folder already filled by torchvision works as it is.
  ``FashionMNIST(root)`` reads ``root/FashionMNIST/raw/`` the same way.
* ``MNIST(root, download=True)`` -- fetches the missing ``.gz`` files from ``MNIST.mirrors`` (torchvision's
  list; override the class attribute to use another mirror) and checks each against torchvision's MD5.

Differences from torchvision, on purpose:

* ``dataset[i]`` gives ``(image, target)`` where ``image`` is a uint8 NumPy array of shape (28, 28) (torchvision
  gives a PIL image; this needs no Pillow) and ``target`` an ``int``. ``transforms.ToTensor()`` turns it into a
  float32 (1, 28, 28) tensor in [0, 1], exactly as it does torchvision's PIL image.
* A download is written to a temporary file in the same folder, checked, then renamed into place: an
  interrupted or corrupt download never leaves a partial file. The ``.gz`` files are read directly (no extracted
  copies are written).
* torchvision's legacy ``processed/training.pt`` files are not read: they are pickles.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import operator
import os
import struct
import tempfile
import urllib.request
import zlib
from importlib import resources
from typing import Any, Callable

import numpy as np

from tinyautograd.tensor import Tensor
from tinyautograd.utils.data import Dataset

__all__ = ["MNIST", "FashionMNIST", "read_idx"]

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT"); multi-byte values are big-endian
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_DOWNLOAD_CHUNK = 1 << 16
_DOWNLOAD_TIMEOUT_S = 60.0
# some mirrors refuse urllib's default agent string
_USER_AGENT = "tinyautograd (python urllib)"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (plain, or gzip-compressed when the name ends in ``.gz``) into a native-endian array.

    The array has the file's dtype (uint8 for MNIST) and its shape, e.g. (60000, 28, 28) for
    ``train-images-idx3-ubyte``. torchvision's private equivalent is ``read_sn3_pascalvincent_tensor``.
    Raises ``RuntimeError`` naming the file when it is not a well-formed IDX file.
    """
    path = os.fspath(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise RuntimeError(f"read_idx: {path} is not a readable gzip file ({e}); delete it and download "
                           "it again") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise RuntimeError(f"read_idx: {path} is not an IDX file (header bytes {raw[:4].hex()}; expected "
                           f"00 00, a type code in {sorted(hex(c) for c in _IDX_DTYPES)} and the rank)")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise RuntimeError(f"read_idx: {path} is truncated: {len(raw)} bytes cannot hold the {ndim} dimension "
                           "sizes its header announces")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise RuntimeError(f"read_idx: {path} holds {len(raw) - header} bytes of data, but its header announces "
                           f"shape {shape} of {dtype.newbyteorder('=')} ({expected} bytes); the file is truncated "
                           "or corrupt, delete it and download it again")
    # astype copies into a writable, native-endian array that does not pin the file's bytes
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _md5_of_file(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_DOWNLOAD_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _ChecksumError(Exception):
    """A download arrived whole but with the wrong MD5; the next mirror is tried."""


def _fetch(url: str, dest: str, md5: str) -> None:
    """Download ``url`` to ``dest`` through a temporary file beside it; ``dest`` appears only once verified."""
    folder, name = os.path.split(dest)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            for chunk in iter(lambda: response.read(_DOWNLOAD_CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        got = digest.hexdigest()
        if got != md5:
            raise _ChecksumError(f"MD5 mismatch: expected {md5}, got {got} ({size} bytes received); "
                                 "the download was discarded")
        os.replace(tmp, dest)
    except BaseException:
        # BaseException: a KeyboardInterrupt mid-download must not leave the .part file behind either
        try:
            os.remove(tmp)
        except FileNotFoundError:
            pass
        raise


class MNIST(Dataset):
    """The MNIST handwritten digits, as ``torchvision.datasets.MNIST``.

    Args:
        root: the folder that holds ``MNIST/raw/`` (torchvision's layout), or ``None`` (the default) for the
            5,000-digit subset bundled with tinyautograd (4,000 train / 1,000 test; no files, no network).
        train: the training split (60,000 images; 4,000 bundled) or, if ``False``, the test split (10,000;
            1,000 bundled).
        transform: applied to each image, a uint8 NumPy array of shape (28, 28); e.g. ``transforms.ToTensor()``.
        target_transform: applied to each target, an ``int``.
        download: fetch the IDX files that are missing under ``root/MNIST/raw/`` from ``mirrors`` first.

    Attributes:
        data: uint8 tensor (N, 28, 28); assigning a tensor or array (e.g. ``ds.data = ds.data[:100]``) changes
            what indexing returns, as in torchvision.
        targets: int64 tensor (N,), assignable the same way.
        classes: the class names, ``classes[target]``.

    ``dataset[i]`` returns ``(image, target)``: a uint8 (28, 28) NumPy array (torchvision: a PIL image) and an
    ``int``, each passed through its transform when one is given.
    """

    mirrors: list[str] = [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ]
    resources: list[tuple[str, str]] = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    classes: list[str] = [
        "0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
        "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine",
    ]
    # the package file MNIST(root=None) reads; None where no subset is bundled
    bundled_file: str | None = "mnist_subset.npz"

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True,
                 transform: Callable[[np.ndarray], Any] | None = None,
                 target_transform: Callable[[int], Any] | None = None, download: bool = False) -> None:
        if isinstance(root, str):
            root = os.path.expanduser(root)
        self.root = root
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        name = type(self).__name__
        if root is None:
            if download:
                raise ValueError(f"{name}: download=True needs a root folder to download into, e.g. "
                                 f"{name}('data', download=True); root=None uses the bundled subset, which "
                                 "needs no download")
            images, labels = self._load_bundled()
        else:
            if download:
                self.download()
            images, labels = self._load_idx()
        self.data = images
        self.targets = labels

    @classmethod
    def bundled(cls, train: bool = True, transform: Callable[[np.ndarray], Any] | None = None,
                target_transform: Callable[[int], Any] | None = None) -> "MNIST":
        """The subset shipped with tinyautograd: 4,000 train or 1,000 test images (no files, no network)."""
        return cls(None, train=train, transform=transform, target_transform=target_transform)

    # -- data and targets: NumPy inside (cheap per-item access), tensors outside (torchvision's attributes) ----
    @property
    def data(self) -> Tensor:
        if self._data_tensor is None:
            self._data_tensor = Tensor._wrap(self._images)
        return self._data_tensor

    @data.setter
    def data(self, value: Tensor | np.ndarray) -> None:
        images = _host_array(value)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{type(self).__name__}.data: expected uint8 images of shape (N, H, W), got "
                             f"{images.dtype} of shape {tuple(images.shape)}")
        self._images = images
        # keeping a CPU tensor that shares the array means in-place edits of ds.data reach what indexing returns
        self._data_tensor = value if isinstance(value, Tensor) and value._data is images else None

    @property
    def targets(self) -> Tensor:
        if self._targets_tensor is None:
            self._targets_tensor = Tensor._wrap(self._labels)
        return self._targets_tensor

    @targets.setter
    def targets(self, value: Tensor | np.ndarray) -> None:
        labels = _host_array(value)
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(f"{type(self).__name__}.targets: expected integer labels of shape (N,), got "
                             f"{labels.dtype} of shape {tuple(labels.shape)}")
        if labels.dtype != np.int64:
            labels = labels.astype(np.int64)
        self._labels = labels
        self._targets_tensor = value if isinstance(value, Tensor) and value._data is labels else None

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    @property
    def raw_folder(self) -> str:
        """``root/<ClassName>/raw``, where torchvision keeps the IDX files."""
        if self.root is None:
            raise ValueError(f"{type(self).__name__}: the bundled subset (root=None) has no raw folder")
        return os.path.join(self.root, type(self).__name__, "raw")

    def __len__(self) -> int:
        if len(self._images) != len(self._labels):
            raise RuntimeError(f"{type(self).__name__}: data has {len(self._images)} images but targets has "
                               f"{len(self._labels)} labels; assign both together")
        return len(self._images)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        index = operator.index(index)
        # a copy, so a transform that edits its input in place cannot change the dataset
        image = self._images[index].copy()
        target = int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        where = "bundled subset (tinyautograd/vision/data)" if self.root is None else os.fspath(self.root)
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {where}", f"    Split: {'Train' if self.train else 'Test'}"]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        if self.target_transform is not None:
            lines.append(f"    Target transform: {self.target_transform!r}")
        return "\n".join(lines)

    # -- reading --------------------------------------------------------------------------------------------
    def _split_files(self) -> tuple[str, str]:
        """The image and label resource names of the chosen split."""
        prefix = "train" if self.train else "t10k"
        return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"

    def _existing(self, gz_name: str) -> str | None:
        """The file to read for a resource: the extracted file (what torchvision reads) or else the .gz."""
        for candidate in (gz_name[:-3], gz_name):
            path = os.path.join(self.raw_folder, candidate)
            if os.path.isfile(path):
                return path
        return None

    def _check_exists(self) -> bool:
        return all(self._existing(name) is not None for name, _ in self.resources)

    def _load_idx(self) -> tuple[np.ndarray, np.ndarray]:
        name = type(self).__name__
        paths = []
        for resource in self._split_files():
            path = self._existing(resource)
            if path is None:
                hint = " (or root=None for the bundled subset)" if self.bundled_file is not None else ""
                raise RuntimeError(
                    f"{name}: dataset not found: neither {resource[:-3]} nor {resource} is in {self.raw_folder}. "
                    f"Pass download=True to fetch it{hint}, or copy torchvision's {name}/raw folder there.")
            paths.append(path)
        images, labels = read_idx(paths[0]), read_idx(paths[1])
        if images.ndim != 3 or images.dtype != np.uint8:
            raise RuntimeError(f"{name}: {paths[0]} should hold uint8 images (N, H, W), got {images.dtype} "
                               f"{images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise RuntimeError(f"{name}: {paths[1]} should hold uint8 labels (N,), got {labels.dtype} "
                               f"{labels.shape}")
        if len(images) != len(labels):
            raise RuntimeError(f"{name}: {paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} "
                               "labels; one of the files is from another split or dataset")
        return images, labels.astype(np.int64)

    def _load_bundled(self) -> tuple[np.ndarray, np.ndarray]:
        name = type(self).__name__
        if self.bundled_file is None:
            raise ValueError(f"{name}: no subset of {name} is bundled with tinyautograd; pass root= (the folder "
                             f"that holds {name}/raw/) and download=True to fetch the files")
        split = "train" if self.train else "test"
        with (resources.files("tinyautograd.vision") / "data" / self.bundled_file).open("rb") as f:
            with np.load(f, allow_pickle=False) as archive:
                images = archive[f"{split}_images"]
                labels = archive[f"{split}_labels"].astype(np.int64)
        return images, labels

    # -- downloading ----------------------------------------------------------------------------------------
    def download(self) -> None:
        """Fetch each missing IDX file into ``raw_folder`` from the first of ``mirrors`` that serves it intact.

        A file counts as present when its extracted form exists or its ``.gz`` exists with the expected MD5.
        Raises ``RuntimeError`` listing every URL tried and why it failed (HTTP error, network error, or the
        expected and received MD5) when no mirror delivers a file; nothing partial is left behind.
        """
        if self._check_exists():
            return
        os.makedirs(self.raw_folder, exist_ok=True)
        for filename, md5 in self.resources:
            dest = os.path.join(self.raw_folder, filename)
            if os.path.isfile(dest[:-3]) or (os.path.isfile(dest) and _md5_of_file(dest) == md5):
                continue
            failures = []
            for mirror in self.mirrors:
                url = f"{mirror}{filename}"
                try:
                    _fetch(url, dest, md5)
                    break
                except (_ChecksumError, OSError, http.client.HTTPException, ValueError) as e:
                    # OSError covers urllib's URLError/HTTPError and timeouts; ValueError a malformed URL
                    failures.append(f"  {url}: {e}")
            else:
                tried = "\n".join(failures) if failures else "  (no mirrors: the mirrors list is empty)"
                raise RuntimeError(
                    f"{type(self).__name__}: could not download {filename} into {self.raw_folder}; tried:\n{tried}\n"
                    f"Set {type(self).__name__}.mirrors to a list of base URLs you can reach, or put the IDX "
                    "files in that folder yourself.")


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST, as ``torchvision.datasets.FashionMNIST``: same files, layout and interface as
    :class:`MNIST`, read from ``root/FashionMNIST/raw/``. No subset is bundled, so ``root`` is required."""

    mirrors: list[str] = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources: list[tuple[str, str]] = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    classes: list[str] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    bundled_file = None


def _host_array(value: Any) -> np.ndarray:
    """A NumPy array of a tensor (any device) or array-like, without copying a CPU tensor's array."""
    if isinstance(value, Tensor):
        data = value._data
        return data if isinstance(data, np.ndarray) else data.get()
    return np.asarray(value)
