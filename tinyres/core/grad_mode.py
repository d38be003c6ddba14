"""Grad mode and anomaly mode: the two switches every op reads.

``no_grad`` / ``enable_grad`` / ``set_grad_enabled`` decide whether ops record a graph;
``detect_anomaly`` makes every op check its results for NaN and Inf and remember the line
of user code that called it.
"""
import contextlib
import os

from ..errors import UserError

_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    """Sets grad mode on entry and restores the previous mode on exit.  The previous modes
    are a stack, so one instance can be entered again while active (a decorated function
    that calls itself)."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.previous = []

    def __enter__(self):
        global _grad_enabled
        self.previous.append(_grad_enabled)
        _grad_enabled = self.enabled

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.previous.pop()


def no_grad():
    """Context manager and decorator: ops inside build no graph."""
    return _GradMode(False)


def enable_grad():
    """Context manager and decorator: ops inside build a graph, even within ``no_grad``."""
    return _GradMode(True)


class set_grad_enabled(_GradMode):
    """As ``torch.set_grad_enabled``: sets grad mode at once; used in ``with``, it restores
    the previous mode on exit."""

    def __init__(self, mode):
        global _grad_enabled
        super().__init__(bool(mode))
        self.previous.append(_grad_enabled)
        _grad_enabled = self.enabled

    def __enter__(self):
        pass      # the mode was set in __init__; __exit__ restores what was before it


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
