"""``save`` and ``load`` without pickle: ``tinyautograd.save(obj, f)`` / ``tinyautograd.load(f, map_location)``.

They take what ``torch.save`` / ``torch.load`` are used for in practice (state dicts, optimizer state dicts,
checkpoints that nest them with epochs, losses and NumPy arrays) and give it back with the same types, but the
file never holds code: ``load`` parses JSON and ``.npy`` headers and nothing else, so a crafted file can at worst
make ``load`` raise. (``torch.load`` unpickles, which can run arbitrary code unless ``weights_only=True``.)

What can be saved
-----------------
``None``, ``bool``, ``int``, ``float``, ``str``; ``list``, ``tuple``, ``dict`` and ``OrderedDict`` whose keys are
``str`` or ``int`` (key order is kept, an ``OrderedDict`` comes back as one); ``numpy.ndarray`` of any dtype
except ``object`` (comes back as an ndarray, Fortran order included) and NumPy scalars such as ``np.float64(1.5)``;
``Tensor`` and ``nn.Parameter``. Anything else (functions, sets, modules, instances of other classes, subclasses
of the types above) raises ``TypeError`` naming where it sits, e.g. ``obj['model']['fc.weight']``, before
anything is written.

A tensor comes back with its values, dtype, shape and ``requires_grad`` flag, as a leaf with ``grad=None``
(``torch.save`` does not store ``.grad`` either), as an ``nn.Parameter`` if it was one (a plain ``Tensor`` when
``tinyautograd.nn`` cannot be imported), on the device it was saved from unless ``map_location`` says otherwise.

Sharing: one Tensor or ndarray object that appears several times in ``obj`` is stored once and loads as one
object, as with torch. Unlike torch, distinct tensors that share memory (a tensor and a view of it) load as
independent copies, and a list or dict that appears twice loads as two equal containers. A container that
contains itself raises ``ValueError``.

File format (version 1)
-----------------------
A zip archive (members stored uncompressed, timestamps fixed so that equal objects give equal bytes) with:

``structure.json``
    UTF-8 (in practice ASCII) JSON object::

        {"format": "tinyautograd.save", "version": 1, "arrays": [ENTRY, ...], "root": NODE}

    Each ENTRY describes one array member: ``{"kind": "ndarray", "file": "arrays/0.npy"}``,
    ``{"kind": "numpy_scalar", "file": ...}`` (a 0-d array that loads as its scalar) or
    ``{"kind": "tensor", "file": ..., "device": "cuda:0", "requires_grad": true, "parameter": false}``.
    Each NODE is a JSON object whose ``"type"`` says what it holds:

    - ``{"type": "none"}``
    - ``{"type": "bool", "value": true}``, ``{"type": "int", "value": 3}``, ``{"type": "str", "value": "a"}``
    - ``{"type": "float", "value": "0.1"}``: the value as Python's ``repr`` writes it (``"nan"``, ``"-inf"`` too)
    - ``{"type": "list" | "tuple", "items": [NODE, ...]}``
    - ``{"type": "dict" | "ordered_dict", "items": [[KEY, NODE], ...]}``, KEY a JSON string or integer, in order
    - ``{"type": "array", "index": i}``: the object described by ``arrays[i]``

``arrays/<i>.npy``
    One NumPy ``.npy`` file (format 1.0 or 2.0) per entry, C order for tensors. ``load`` checks each header
    (no ``object`` dtype, data size matching the header) before reading it with
    ``numpy.lib.format.read_array(allow_pickle=False)``, the reader behind ``np.load``.

Members not named in ``structure.json`` are ignored. ``load`` refuses a newer format version with a message
that says so.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import secrets
import zipfile
import zlib
from collections import OrderedDict
from typing import IO, Any, Callable, Union

import numpy as np

from . import _dtype, backend
from .tensor import Tensor

__all__ = ["save", "load"]

FORMAT_NAME = "tinyautograd.save"
FORMAT_VERSION = 1
STRUCTURE_MEMBER = "structure.json"

FileLike = Union[str, bytes, os.PathLike, IO[bytes]]
MapLocation = Union[None, str, backend.device, dict, Callable[[Tensor, str], Any]]

# Fixed member timestamp (the zip epoch) so that saving equal objects gives byte-identical files.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SUPPORTED = ("Tensor, numpy.ndarray (not of object dtype), NumPy scalars, dict/OrderedDict with str or int keys, "
              "list, tuple, int, float, str, bool and None")


def _parameter_class() -> type | None:
    """nn.Parameter, imported on use: nn imports the core, the core must not import nn."""
    try:
        from .nn import Parameter
    except ImportError:
        return None
    return Parameter


# ---------------------------------------------------------------------------------------------------------------
# save


class _Encoder:
    """Turns an object tree into the JSON structure plus the list of arrays to write, checking every node."""

    def __init__(self) -> None:
        self.entries: list[dict] = []
        self.arrays: list[np.ndarray] = []
        self._index_of: dict[int, int] = {}  # id(tensor or ndarray) -> its entry, so shared objects stay shared
        self._open: set[int] = set()  # ids of the containers being encoded, to catch cycles
        self._parameter_cls = _parameter_class()

    def encode(self, value: Any, path: str) -> dict:
        kind = type(value)
        if value is None:
            return {"type": "none"}
        if kind is bool:
            return {"type": "bool", "value": value}
        if kind is int:
            return {"type": "int", "value": value}
        if kind is float:
            return {"type": "float", "value": repr(value)}
        if kind is str:
            return {"type": "str", "value": value}
        if kind is list or kind is tuple or kind is dict or kind is OrderedDict:
            return self._container(value, path)
        if kind is np.ndarray or isinstance(value, (np.generic, Tensor)):
            return {"type": "array", "index": self._array(value, path)}
        hint = (" To save a module or an optimizer, save its state_dict()."
                if callable(getattr(value, "state_dict", None)) else "")
        raise TypeError(f"tinyautograd.save: cannot save {path} of type {_type_name(value)}; "
                        f"supported: {_SUPPORTED}.{hint}")

    def _container(self, value: Any, path: str) -> dict:
        if id(value) in self._open:
            raise ValueError(f"tinyautograd.save: {path} contains itself; containers with cycles cannot be saved")
        self._open.add(id(value))
        try:
            if isinstance(value, dict):
                items = []
                for key, item in value.items():
                    if type(key) is not str and type(key) is not int:
                        raise TypeError(
                            f"tinyautograd.save: {path} has a key {key!r} of type {_type_name(key)}; dict keys "
                            "must be str or int. Convert the keys, e.g. {str(k): v for k, v in d.items()}.")
                    items.append([key, self.encode(item, f"{path}[{key!r}]")])
                return {"type": "ordered_dict" if type(value) is OrderedDict else "dict", "items": items}
            return {"type": "tuple" if type(value) is tuple else "list",
                    "items": [self.encode(item, f"{path}[{i}]") for i, item in enumerate(value)]}
        finally:
            self._open.discard(id(value))

    def _array(self, value: Any, path: str) -> int:
        index = self._index_of.get(id(value))
        if index is not None:
            return index
        if isinstance(value, Tensor):
            entry, array = self._tensor_entry(value, path)
        else:
            array = np.asarray(value) if isinstance(value, np.generic) else value
            if array.dtype.hasobject:
                raise TypeError(f"tinyautograd.save: cannot save {path}: a NumPy {type(value).__name__} of dtype "
                                f"{array.dtype} holds Python objects, which only pickle can store. Convert it to "
                                "a numeric or string dtype, or to a list.")
            if any(not name.isascii() for name in array.dtype.names or ()):
                raise TypeError(f"tinyautograd.save: cannot save {path}: its structured dtype {array.dtype} has "
                                "non-ASCII field names; rename the fields.")
            entry = {"kind": "ndarray" if type(value) is np.ndarray else "numpy_scalar"}
        index = len(self.entries)
        entry["file"] = f"arrays/{index}.npy"
        self.entries.append(entry)
        self.arrays.append(array)
        self._index_of[id(value)] = index
        return index

    def _tensor_entry(self, value: Tensor, path: str) -> tuple[dict, np.ndarray]:
        is_parameter = self._parameter_cls is not None and isinstance(value, self._parameter_cls)
        if type(value) is not Tensor and not is_parameter:
            raise TypeError(f"tinyautograd.save: cannot save {path} of type {_type_name(value)}: only Tensor and "
                            "nn.Parameter are stored as tensors. Save a plain tensor with value.detach().")
        entry = {"kind": "tensor", "device": str(value.device), "requires_grad": bool(value.requires_grad),
                 "parameter": is_parameter}
        return entry, _c_order(backend.move(value._data, backend.CPU))


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16  # rw-r--r-- when someone unzips it
    return info


def _write_archive(stream: IO[bytes], structure: bytes, entries: list[dict], arrays: list[np.ndarray]) -> None:
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr(_member(STRUCTURE_MEMBER), structure)
        for entry, array in zip(entries, arrays):
            info = _member(entry["file"])
            info.file_size = array.nbytes  # lets zipfile switch to zip64 for members past 2 GiB
            with archive.open(info, "w") as out:
                np.lib.format.write_array(out, array, allow_pickle=False)


def _save_to_path(path: str, structure: bytes, entries: list[dict], arrays: list[np.ndarray]) -> None:
    # Write beside the target and rename over it: a crash or an error mid-save leaves the old file untouched.
    # realpath makes a symlinked target get its file replaced rather than the link.
    target = os.path.realpath(path)
    directory, base = os.path.split(target)
    temp = os.path.join(directory, f".{base}.{secrets.token_hex(8)}.tmp")
    # os.open with 0o666 gives the file the mode a plain open() would (umask applied), unlike mkstemp's 0o600.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            _write_archive(out, structure, entries, arrays)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temp, os.stat(target).st_mode & 0o7777)  # overwriting keeps the old file's permissions
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    if os.name == "posix":  # make the rename itself durable; Windows cannot open a directory for fsync
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save(obj: Any, f: FileLike) -> None:
    """Write ``obj`` to ``f`` (a path or a binary file object), as ``torch.save(obj, f)``, without pickle.

    Args:
        obj: a tensor, a state dict, an optimizer state dict or any nesting of the types listed in this module's
            docstring.
        f: a ``str`` / ``os.PathLike`` path, written atomically (a temporary file in the same directory, fsynced,
            then renamed over the target: a failed save leaves an existing file as it was), or a writable binary
            file object, written from its current position.

    Raises:
        TypeError: ``obj`` holds something that cannot be saved (the message gives its place, e.g.
            ``obj['state'][0]['exp_avg']``), or ``f`` is neither a path nor a writable file. Nothing is written.
        ValueError: a container in ``obj`` contains itself. Nothing is written.
    """
    encoder = _Encoder()
    try:
        root = encoder.encode(obj, "obj")
        structure = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, "arrays": encoder.entries,
                                "root": root}, allow_nan=False).encode("ascii")
    except RecursionError:
        raise ValueError("tinyautograd.save: obj is nested too deeply to save (past Python's recursion "
                         "limit); flatten it") from None
    if isinstance(f, (str, bytes, os.PathLike)):
        _save_to_path(os.fsdecode(os.fspath(f)), structure, encoder.entries, encoder.arrays)
    elif callable(getattr(f, "write", None)):
        _write_archive(f, structure, encoder.entries, encoder.arrays)
    else:
        raise TypeError(f"tinyautograd.save: f must be a path (str or os.PathLike) or a binary file object with "
                        f"write(), got {_type_name(f)}")


# ---------------------------------------------------------------------------------------------------------------
# load


class _BadFile(Exception):
    """What is wrong with the file; load turns it into a RuntimeError that names the file."""


def _describe_non_zip(head: bytes) -> str:
    if head.startswith(b"PK") or b"PK".startswith(head):
        return ("is truncated or corrupted: it starts like a zip archive but its central directory (at the end of "
                "the file) is missing or damaged; the save that wrote it was probably interrupted")
    if head.startswith(b"\x80"):
        return ("holds a pickle (torch.save's legacy format, or pickle.dump), which tinyautograd.load never "
                "unpickles; load it with torch.load and convert its tensors through NumPy (tensor.numpy(), "
                "tinyautograd.from_numpy) before tinyautograd.save")
    if head.startswith(b"\x93NUMPY"):
        return "is a NumPy .npy file, not a tinyautograd archive; read it with numpy.load"
    return "is not a tinyautograd archive (tinyautograd.save writes zip files; this one has no zip signature)"


def _describe_foreign_zip(names: list[str]) -> str:
    if any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
        return ("was written by torch.save: it holds a pickle (data.pkl), which tinyautograd.load never "
                "unpickles; load it with torch.load and convert its tensors through NumPy (tensor.numpy(), "
                "tinyautograd.from_numpy) before tinyautograd.save")
    if names and all(name.endswith(".npy") for name in names):
        return "is a NumPy .npz archive, not a tinyautograd archive; read it with numpy.load"
    return f"is a zip archive without the {STRUCTURE_MEMBER!r} member that tinyautograd.save writes"


def _read_structure(archive: zipfile.ZipFile) -> dict:
    names = archive.namelist()
    if STRUCTURE_MEMBER not in names:
        raise _BadFile(_describe_foreign_zip(names))
    _check_member(archive.getinfo(STRUCTURE_MEMBER))
    try:
        structure = json.loads(archive.read(STRUCTURE_MEMBER), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _BadFile(f"its {STRUCTURE_MEMBER} is not valid JSON ({exc})") from exc
    if not isinstance(structure, dict) or structure.get("format") != FORMAT_NAME:
        found = structure.get("format") if isinstance(structure, dict) else type(structure).__name__
        raise _BadFile(f"is not a tinyautograd archive: its {STRUCTURE_MEMBER} has format {found!r}, "
                       f"expected {FORMAT_NAME!r}")
    version = structure.get("version")
    if type(version) is not int or version < 1:
        raise _BadFile(f"its {STRUCTURE_MEMBER} has an invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise _BadFile(f"was written in format version {version} by a newer tinyautograd; this one reads up to "
                       f"version {FORMAT_VERSION}: upgrade tinyautograd")
    if not isinstance(structure.get("arrays"), list) or "root" not in structure:
        raise _BadFile(f"its {STRUCTURE_MEMBER} lacks the 'arrays' list or the 'root' node")
    return structure


def _check_member(info: zipfile.ZipInfo) -> None:
    # zipfile would raise its own RuntimeError asking for a password, without naming our file
    if info.flag_bits & 0x1:
        raise _BadFile(f"has an encrypted member {info.filename!r}; tinyautograd.save never encrypts")
    # stored is what save writes; deflated is accepted for archives repacked by zip tools
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _BadFile(f"has a member {info.filename!r} compressed with zip method {info.compress_type}; "
                       "tinyautograd.save stores members uncompressed")


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


def _read_npy(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    """One .npy member, its header checked against the member's size before any data is read."""
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise _BadFile(f"its array member {member!r} is missing") from None
    _check_member(info)
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise _BadFile(f"its array member {member!r} uses .npy format version {version}, not 1.0 or 2.0")
        data_offset = stream.tell()
    if dtype.hasobject:
        raise _BadFile(f"its array member {member!r} has dtype {dtype}, which holds Python objects that only "
                       "unpickling could restore; refused")
    expected = math.prod(shape) * dtype.itemsize
    if info.file_size - data_offset != expected:
        raise _BadFile(f"its array member {member!r} is truncated or corrupted: the header says shape {shape} of "
                       f"{dtype} ({expected} bytes) but the member holds {info.file_size - data_offset} bytes")
    with archive.open(info) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


# the JSON type of each scalar node's "value" (a float travels as its repr, which JSON numbers cannot hold for nan)
_SCALAR_TYPES = {"bool": bool, "int": int, "float": str, "str": str}


class _Decoder:
    """Rebuilds the object tree from a checked structure, loading each array member on first use."""

    def __init__(self, archive: zipfile.ZipFile, entries: list, restore: Callable[[np.ndarray, dict], Any]):
        self.archive = archive
        self.entries = entries
        self.restore = restore
        self.loaded: dict[int, Any] = {}

    def decode(self, node: Any, path: str) -> Any:
        kind = node.get("type") if isinstance(node, dict) else None
        if kind == "none":
            return None
        if kind in _SCALAR_TYPES:
            value = node.get("value")
            if type(value) is not _SCALAR_TYPES[kind]:
                raise _BadFile(f"node {path} of type {kind!r} has value {value!r}")
            if kind == "float":
                try:
                    return float(value)
                except ValueError:
                    raise _BadFile(f"node {path} has float value {value!r}, which is not a number") from None
            return value
        if kind in ("list", "tuple"):
            items = node.get("items")
            if not isinstance(items, list):
                raise _BadFile(f"node {path} of type {kind!r} has no 'items' list")
            decoded = [self.decode(item, f"{path}[{i}]") for i, item in enumerate(items)]
            return decoded if kind == "list" else tuple(decoded)
        if kind in ("dict", "ordered_dict"):
            items = node.get("items")
            if not isinstance(items, list):
                raise _BadFile(f"node {path} of type {kind!r} has no 'items' list")
            result = {} if kind == "dict" else OrderedDict()
            for pair in items:
                if not (isinstance(pair, list) and len(pair) == 2 and type(pair[0]) in (str, int)):
                    raise _BadFile(f"node {path} has an item {pair!r} that is not a [str or int key, node] pair")
                result[pair[0]] = self.decode(pair[1], f"{path}[{pair[0]!r}]")
            return result
        if kind == "array":
            index = node.get("index")
            if type(index) is not int or not 0 <= index < len(self.entries):
                raise _BadFile(f"node {path} refers to array {index!r}, but the archive lists "
                               f"{len(self.entries)} arrays")
            return self._array(index)
        raise _BadFile(f"node {path} is not a valid node: {_abbreviate(node)}")

    def _array(self, index: int) -> Any:
        if index in self.loaded:
            return self.loaded[index]
        entry = self.entries[index]
        kind = entry.get("kind") if isinstance(entry, dict) else None
        member = entry.get("file") if isinstance(entry, dict) else None
        if kind not in ("ndarray", "numpy_scalar", "tensor") or not isinstance(member, str):
            raise _BadFile(f"array entry {index} is not valid: {_abbreviate(entry)}")
        array = _read_npy(self.archive, member)
        if kind == "ndarray":
            value = array
        elif kind == "numpy_scalar":
            if array.ndim != 0:
                raise _BadFile(f"array entry {index} is a NumPy scalar but {member!r} has shape {array.shape}")
            value = array[()]
        else:
            value = self.restore(_tensor_array(array, entry, index), entry)
        self.loaded[index] = value
        return value


def _abbreviate(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def _tensor_array(array: np.ndarray, entry: dict, index: int) -> np.ndarray:
    """The array of a tensor entry, checked: a dtype tinyautograd has, a flag a tensor of it can carry."""
    if not array.dtype.isnative:  # written on a machine of the other byte order
        array = array.astype(array.dtype.newbyteorder("="))
    try:
        dtype = _dtype.from_numpy_dtype(array.dtype)
    except TypeError:
        raise _BadFile(f"tensor entry {index} has dtype {array.dtype}, which tinyautograd tensors do not "
                       "support") from None
    requires_grad, parameter, location = entry.get("requires_grad"), entry.get("parameter"), entry.get("device")
    if type(requires_grad) is not bool or type(parameter) is not bool or not isinstance(location, str):
        raise _BadFile(f"tensor entry {index} is not valid: {_abbreviate(entry)}")
    if requires_grad and not dtype.is_floating_point:
        raise _BadFile(f"tensor entry {index} of dtype {dtype} claims requires_grad=True, which only floating "
                       "point tensors can have")
    try:
        backend.device(location)
    except (TypeError, RuntimeError):
        raise _BadFile(f"tensor entry {index} has an invalid device {location!r}") from None
    return _c_order(array)


def _c_order(array: np.ndarray) -> np.ndarray:
    # not np.ascontiguousarray: it turns a 0-d array into shape (1,)
    return array if array.flags.c_contiguous else array.copy(order="C")


def _restorer(map_location: MapLocation) -> Callable[[np.ndarray, dict], Tensor]:
    """torch's map_location rules, as a function from (cpu array, tensor entry) to the loaded tensor."""
    if map_location is None:
        def place(tensor: Tensor, location: str) -> Tensor:
            return _to_device(tensor, location, map_location)
    elif isinstance(map_location, (str, backend.device)):
        backend.device(map_location)  # an invalid device string fails now, not after reading the file

        def place(tensor: Tensor, location: str) -> Tensor:
            return _to_device(tensor, map_location, map_location)
    elif isinstance(map_location, dict):
        def place(tensor: Tensor, location: str) -> Tensor:
            return _to_device(tensor, map_location.get(location, location), map_location)
    elif callable(map_location):
        def place(tensor: Tensor, location: str) -> Tensor:
            result = map_location(tensor, location)
            if result is None:  # torch: None means "restore as if no map_location were given"
                return _to_device(tensor, location, map_location)
            if not isinstance(result, Tensor):
                raise TypeError(f"tinyautograd.load: map_location returned {_type_name(result)} for a tensor "
                                f"saved on {location!r}; it must return a Tensor or None")
            return result
    else:
        raise TypeError(f"tinyautograd.load: map_location must be None, a str, a tinyautograd.device, a dict or a "
                        f"callable(tensor, location), got {_type_name(map_location)}")

    def restore(array: np.ndarray, entry: dict) -> Tensor:
        placed = place(Tensor._wrap(array), entry["device"])
        requires_grad = entry["requires_grad"]
        if entry["parameter"]:
            parameter_cls = _parameter_class()
            if parameter_cls is not None:
                return parameter_cls(placed.detach(), requires_grad=requires_grad)
        tensor = placed.detach()  # a fresh leaf, whatever a map_location callable returned
        if requires_grad:
            tensor.requires_grad_(True)
        return tensor

    return restore


def _to_device(tensor: Tensor, location: str | backend.device, map_location: MapLocation) -> Tensor:
    target = backend.device(location)
    if target.type == "cuda" and not backend.cuda_available():
        raise RuntimeError(
            f"tinyautograd.load: a tensor in the file is to be restored on {str(target)!r} "
            f"(map_location={map_location!r}) but CUDA is not available (tinyautograd needs CuPy and a GPU). "
            "On a CPU-only machine, pass map_location='cpu'.")
    return Tensor._wrap(backend.move(tensor._data, backend.normalize_device(target)))


def _file_name(f: Any) -> str:
    name = getattr(f, "name", None)
    return repr(name) if isinstance(name, (str, bytes)) else f"the {type(f).__name__} file object"


def _load_stream(stream: IO[bytes], name: str, restore: Callable[[np.ndarray, dict], Any]) -> Any:
    try:
        start = stream.tell()
        head = stream.read(8)
        stream.seek(start)
        if not head:
            raise _BadFile("is empty (a save that never completed, or a file created by something else)")
        try:
            archive = zipfile.ZipFile(stream)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise _BadFile(f"{_describe_non_zip(head)} ({exc})") from exc
        with archive:
            structure = _read_structure(archive)
            decoder = _Decoder(archive, structure["arrays"], restore)
            return decoder.decode(structure["root"], "obj")
    except _BadFile as exc:
        raise RuntimeError(f"tinyautograd.load: {name} {exc}") from exc.__cause__
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, RecursionError) as exc:
        # CRC mismatches, damaged deflate streams, bad .npy headers, zip features zipfile lacks, absurd nesting
        raise RuntimeError(f"tinyautograd.load: {name} is corrupted ({type(exc).__name__}: {exc})") from exc


def load(f: FileLike, map_location: MapLocation = None, weights_only: bool = True) -> Any:
    """Read an object written by :func:`save`, as ``torch.load(f, map_location, weights_only)``, without pickle.

    Args:
        f: a ``str`` / ``os.PathLike`` path or a readable binary file object (one that cannot seek is read into
            memory first).
        map_location: where tensors go, as in torch: ``None`` (the device each was saved from), a device string
            or ``tinyautograd.device`` (all tensors there), a dict mapping saved locations to new ones
            (``{'cuda:0': 'cpu'}``; locations not in it stay), or ``callable(tensor, location)`` that gets each
            tensor on the CPU with the string of its saved device (``'cpu'``, ``'cuda:0'``) and returns the
            tensor to use, or ``None`` for the default. torch passes the callable a storage; tinyautograd has
            no storages, so it passes a tensor, and ``lambda storage, loc: storage`` works the same in both.
        weights_only: accepted for torch compatibility. The file format holds no code, so loading is always as
            restricted as torch's ``weights_only=True`` (and also when ``False`` is passed).

    Returns:
        The saved object: containers, scalars, arrays and tensors as described in this module's docstring.

    Raises:
        RuntimeError: the file is empty, truncated, corrupted or not written by :func:`save` (a ``torch.save``
            file, a plain zip, text, ...), the message naming the file and the problem; or a tensor is to be
            restored on CUDA while CUDA is not available.
        TypeError: ``map_location`` or ``f`` has an unsupported type.
        FileNotFoundError: the path does not exist.
    """
    restore = _restorer(map_location)
    if isinstance(f, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(f))
        with open(path, "rb") as stream:
            return _load_stream(stream, repr(path), restore)
    if not callable(getattr(f, "read", None)):
        raise TypeError(f"tinyautograd.load: f must be a path (str or os.PathLike) or a binary file object with "
                        f"read(), got {_type_name(f)}")
    seekable = getattr(f, "seekable", None)
    stream = f if seekable is not None and seekable() else io.BytesIO(f.read())  # zipfile seeks to its end
    return _load_stream(stream, _file_name(f), restore)
