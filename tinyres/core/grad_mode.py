"""Grad mode, inference mode and anomaly mode: the switches every op reads.

``no_grad`` / ``enable_grad`` / ``set_grad_enabled`` set grad mode, ``inference_mode`` sets
inference mode; together they decide whether ops record a graph.  ``detect_anomaly`` makes
every op check its results for NaN and Inf and remember the line of user code that called it.

Each is a context manager and a decorator, as in torch.  A decorated function gets a fresh
copy of the context manager at every call (``clone``), so it may call itself, and an
exception raised inside restores the mode all the same.

Three module globals hold the state; the engine reads ``_grad_enabled`` (record a graph or
not), which is grad mode *and not* inference mode.  ``is_grad_enabled()`` reports grad mode
alone, as torch does: inside ``inference_mode`` an ``enable_grad`` makes it True, yet no op
records (inference mode wins).
"""
import contextlib
import functools
import inspect
import os

from ..errors import UserError

_grad_mode = True           # what is_grad_enabled() reports
_inference_mode = False     # what is_inference_mode_enabled() reports
_grad_enabled = True        # what the engine reads: ops record a graph


def is_grad_enabled():
    """True when grad mode is on (``torch.is_grad_enabled``)."""
    return _grad_mode


def is_inference_mode_enabled():
    """True inside ``inference_mode()`` (``torch.is_inference_mode_enabled``)."""
    return _inference_mode


def _set(grad, inference):
    global _grad_mode, _inference_mode, _grad_enabled
    _grad_mode, _inference_mode = grad, inference
    _grad_enabled = grad and not inference


def _check_bool(value, name, argument):
    if not isinstance(value, bool):
        raise TypeError(f"{name}(): argument '{argument}' must be bool, not {type(value).__name__}")


class _DecoratorContextManager:
    """A context manager that is also a decorator: the decorated function runs inside
    ``self.clone()``, a fresh instance per call (torch's ``_DecoratorContextManager``).
    A generator function runs each of its steps in the mode, and its caller's code between
    the steps in the caller's mode (torch's ``_wrap_generator``)."""

    def __call__(self, func):
        if inspect.isclass(func):
            raise TypeError(f"{type(self).__name__}: can only decorate functions and methods, not the class "
                            f"{func.__name__} (decorate the methods that need it)")
        if not callable(func):
            raise TypeError(f"{type(self).__name__}: expected a function to decorate, got {type(func).__name__}")

        if inspect.isgeneratorfunction(func):
            return self._wrap_generator(func)

        @functools.wraps(func)
        def decorated(*args, **kwargs):
            with self.clone():
                return func(*args, **kwargs)
        return decorated

    def _wrap_generator(self, func):
        @functools.wraps(func)
        def generator(*args, **kwargs):
            gen = func(*args, **kwargs)
            try:
                with self.clone():
                    response = gen.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with self.clone():
                            gen.close()
                        raise
                    except BaseException as e:
                        with self.clone():
                            response = gen.throw(e)
                    else:
                        with self.clone():
                            response = gen.send(request)
            except StopIteration as e:
                return e.value
        return generator

    def clone(self):
        return type(self)()


class _GradModeSwitch(_DecoratorContextManager):
    """Sets grad mode to ``_mode`` on entry and restores the previous mode on exit.  The
    previous modes are a stack, so one instance can be entered again while active.  Usable
    as ``@no_grad()`` and, as torch allows, ``@no_grad`` without parentheses."""

    _mode = None

    def __new__(cls, func=None):
        if func is None:
            return super().__new__(cls)
        return cls()(func)            # @no_grad without parentheses

    def __init__(self, func=None):
        self._previous = []

    def __enter__(self):
        self._previous.append(_grad_mode)
        _set(self._mode, _inference_mode)

    def __exit__(self, *exc):
        _set(self._previous.pop(), _inference_mode)

    def __repr__(self):
        return f"tinyres.{type(self).__name__}()"


class no_grad(_GradModeSwitch):
    """Context manager and decorator: ops inside build no graph (``torch.no_grad``)."""
    _mode = False


class enable_grad(_GradModeSwitch):
    """Context manager and decorator: ops inside build a graph, even within ``no_grad``
    (``torch.enable_grad``); inside ``inference_mode`` they still do not."""
    _mode = True


class set_grad_enabled(_DecoratorContextManager):
    """As ``torch.set_grad_enabled(mode)``, three ways:

    * a plain call ``set_grad_enabled(False)`` sets grad mode at once, and it stays set;
    * ``with set_grad_enabled(False):`` sets it and restores the previous mode on exit;
    * ``@set_grad_enabled(False)`` leaves the mode alone when the function is defined and
      runs each call of the function in that mode, restoring the caller's mode after.
    """

    def __init__(self, mode):
        _check_bool(mode, "set_grad_enabled", "mode")
        self.mode = mode
        self.prev = _grad_mode
        _set(mode, _inference_mode)

    def __call__(self, func):
        _set(self.prev, _inference_mode)        # decorating must not change the mode (torch's rule)
        return super().__call__(func)

    def __enter__(self):
        _set(self.mode, _inference_mode)

    def __exit__(self, *exc):
        _set(self.prev, _inference_mode)

    def clone(self):
        return type(self)(self.mode)

    def __repr__(self):
        return f"tinyres.set_grad_enabled(mode={self.mode})"


class inference_mode(_DecoratorContextManager):
    """As ``torch.inference_mode(mode=True)``: a context manager and decorator (also
    ``@inference_mode`` without parentheses) in which no op records a graph, and every
    tensor made inside is an *inference tensor* (``t.is_inference()`` is True).  Inference
    tensors may not take part in a graph later: an op that records one with such an input
    raises (``check_not_inference``), and so does ``requires_grad_()`` on one outside
    inference mode.  ``inference_mode(False)`` inside it returns to normal mode, grad mode
    on.  Use ``no_grad`` when results must feed training later.

    A view (``reshape``, ``detach``, slicing) is what its base is, inside inference mode or
    out; an in-place write to an inference tensor outside inference mode raises.  One
    difference from torch: torch raises only when an op *saves* an inference tensor for its
    backward (``a + w`` passes, ``a * w`` raises), tinyres whenever an op records a node
    with one as input.
    """

    def __new__(cls, mode=True):
        if isinstance(mode, bool):
            return super().__new__(cls)
        return cls()(mode)            # @inference_mode without parentheses: mode is the function

    def __init__(self, mode=True):
        self.mode = mode
        self._previous = []

    def __enter__(self):
        self._previous.append((_grad_mode, _inference_mode))
        _set(not self.mode, self.mode)      # torch: inference mode on means grad mode off, and off means on

    def __exit__(self, *exc):
        _set(*self._previous.pop())

    def clone(self):
        return type(self)(self.mode)

    def __repr__(self):
        return f"tinyres.inference_mode(mode={self.mode})"


def check_not_inference(tensors, op_name):
    """Raise torch's RuntimeError when one of ``tensors`` is an inference tensor.

    The engine calls this for an op that is about to record a node (grad mode on, some input
    requires grad), with that op's tensor inputs: an inference tensor made inside
    ``inference_mode`` cannot join a graph."""
    for t in tensors:
        if getattr(t, "_is_inference", False):
            raise RuntimeError(
                f"{op_name}: Inference tensors cannot be saved for backward. Please do not use Tensors "
                "created in inference mode in computation tracked by autograd. To work around this, "
                "you can make a clone to get a normal tensor and use it in autograd, or use "
                "`tinyres.no_grad()` instead of `tinyres.inference_mode()`.")


# ---------------------------------------------------------------------------- anomaly detection

_anomaly_mode = False
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))      # frames in here are tinyres's, not the user's


class AnomalyError(RuntimeError, UserError):
    """Raised inside ``detect_anomaly`` by the first op whose forward or backward made a NaN or Inf."""


class detect_anomaly(contextlib.ContextDecorator):
    """Context manager and decorator, as ``torch.autograd.detect_anomaly``: inside it, every
    op remembers the line of your code that called it, and the first forward output or
    backward gradient with a NaN or Inf that its inputs did not already have raises an
    ``AnomalyError`` naming the op and that line.  It slows everything down: for debugging."""

    def __init__(self):
        self.previous = []

    def __enter__(self):
        global _anomaly_mode
        self.previous.append(_anomaly_mode)
        _anomaly_mode = True

    def __exit__(self, *exc):
        global _anomaly_mode
        _anomaly_mode = self.previous.pop()


def is_anomaly_enabled():
    """True inside ``detect_anomaly`` (tinyres's debug mode: checks that read values off a
    GPU, such as cross-entropy's target range, run only there)."""
    return _anomaly_mode


def caller_line():
    """``file:line: code`` of the innermost frame outside the tinyres package."""
    import traceback
    for frame in reversed(traceback.extract_stack()):
        if not frame.filename.startswith(_PACKAGE):
            return f"{frame.filename}:{frame.lineno}: {frame.line}"
    return "(unknown)"
