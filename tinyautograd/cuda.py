"""``tinyautograd.cuda``: GPU availability and control through CuPy (imported only when asked)."""
from __future__ import annotations

from .backend import cuda_available, cupy_or_raise


def is_available() -> bool:
    """True when CuPy imports and sees at least one GPU; never raises."""
    return cuda_available()


def device_count() -> int:
    if not cuda_available():
        return 0
    return int(cupy_or_raise().cuda.runtime.getDeviceCount())


def current_device() -> int:
    return int(cupy_or_raise().cuda.runtime.getDevice())


def set_device(device) -> None:
    from .backend import device as _device

    idx = device if isinstance(device, int) else _device(device).index or 0
    cupy_or_raise().cuda.runtime.setDevice(idx)


def get_device_name(device=None) -> str:
    cp = cupy_or_raise()
    idx = current_device() if device is None else (device if isinstance(device, int) else (device.index or 0))
    name = cp.cuda.runtime.getDeviceProperties(idx)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def get_device_capability(device=None) -> tuple:
    cp = cupy_or_raise()
    idx = current_device() if device is None else device
    props = cp.cuda.runtime.getDeviceProperties(idx)
    return int(props["major"]), int(props["minor"])


def synchronize(device=None) -> None:
    """Wait for the GPU; then raise the error of any index check that failed on it meanwhile (as torch reports a
    device-side assert at a synchronisation)."""
    cupy_or_raise().cuda.runtime.deviceSynchronize()
    from .tensor import run_pending_checks

    run_pending_checks()


def manual_seed(seed: int) -> None:
    """Seed the default generator's CUDA stream only, as ``torch.cuda.manual_seed`` (``tinyautograd.manual_seed``
    seeds the cpu and CUDA streams together). Accepted, and remembered, where no GPU is available."""
    from .random import default_generator

    default_generator.cuda_manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    manual_seed(seed)


def empty_cache() -> None:
    if is_available():
        cupy_or_raise().get_default_memory_pool().free_all_blocks()


def memory_allocated(device=None) -> int:
    if not is_available():
        return 0
    return int(cupy_or_raise().get_default_memory_pool().used_bytes())
