"""Grad mode: thread-local switches that decide whether ops record onto the tape."""
from __future__ import annotations

import functools
import inspect
import threading


class _State(threading.local):
    def __init__(self) -> None:
        self.enabled = True
        self.inference = False
        self.anomaly = False


state = _State()


def is_grad_enabled() -> bool:
    return state.enabled


def is_inference_mode_enabled() -> bool:
    return state.inference


class _DecoratorContextManager:
    """A context manager that also works as a decorator (``@no_grad()`` and ``@no_grad``)."""

    def __new__(cls, *args, **kwargs):
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]) and not kwargs \
                and not isinstance(args[0], bool):
            # used bare as @no_grad: wrap the function directly
            self = super().__new__(cls)
            self.__init__()
            return self(args[0])
        return super().__new__(cls)

    def __call__(self, func):
        if inspect.isgeneratorfunction(func):
            return _wrap_generator(self, func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.clone():
                return func(*args, **kwargs)
        return wrapper

    def clone(self):
        return type(self)()


def _wrap_generator(manager: _DecoratorContextManager, func):
    """A decorated generator runs each of its steps inside the mode, and the caller's code between steps outside it
    (as torch does)."""

    @functools.wraps(func)
    def generator(*args, **kwargs):
        gen = func(*args, **kwargs)
        try:
            with manager.clone():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with manager.clone():
                        gen.close()
                    raise
                except BaseException as error:  # thrown in by the caller: delivered inside the mode
                    with manager.clone():
                        response = gen.throw(error)
                else:
                    with manager.clone():
                        response = gen.send(request)
        except StopIteration as stop:
            return stop.value

    return generator


class no_grad(_DecoratorContextManager):
    """Disable recording, as ``torch.no_grad``."""

    def __enter__(self) -> None:
        self.prev = state.enabled
        state.enabled = False

    def __exit__(self, *exc) -> None:
        state.enabled = self.prev


class enable_grad(_DecoratorContextManager):
    """Enable recording inside a no_grad block, as ``torch.enable_grad``."""

    def __enter__(self) -> None:
        self.prev = state.enabled
        state.enabled = True

    def __exit__(self, *exc) -> None:
        state.enabled = self.prev


class set_grad_enabled(_DecoratorContextManager):
    """Set grad mode on or off: as a function call, a context manager or a decorator."""

    def __init__(self, mode: bool) -> None:
        self.prev = state.enabled
        self.mode = bool(mode)
        state.enabled = self.mode

    def __call__(self, func):
        # as a decorator the mode applies only inside the function: undo what __init__ switched
        state.enabled = self.prev
        return super().__call__(func)

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc) -> None:
        state.enabled = self.prev

    def clone(self):
        return set_grad_enabled.__new__(set_grad_enabled)._init_quiet(self.mode)

    def _init_quiet(self, mode: bool):
        self.mode = mode
        self.prev = state.enabled
        state.enabled = mode
        return self


class inference_mode(_DecoratorContextManager):
    """``torch.inference_mode``: no recording; here it is no_grad plus a flag that ``is_inference_mode_enabled``
    reports (tensors made inside are ordinary tensors that simply have no graph)."""

    def __init__(self, mode: bool = True) -> None:
        self.mode = mode

    def __enter__(self) -> None:
        self.prev = (state.enabled, state.inference)
        if self.mode:
            state.enabled = False
            state.inference = True

    def __exit__(self, *exc) -> None:
        state.enabled, state.inference = self.prev

    def clone(self):
        return inference_mode(self.mode)
