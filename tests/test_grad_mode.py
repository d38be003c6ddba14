"""Grad mode and inference mode (tinyres/core/grad_mode.py): every form -- context manager,
plain call, decorator with and without parentheses -- nested, re-entered and left by an
exception, each scenario run in tinyres and in torch and the traces compared."""
import threading
import types

import numpy as np
import pytest
from helpers import needs_torch, torch

import tinyres
from tinyres import autograd


def trace_of(lib, scenario):
    """Run ``scenario(lib, record)``; ``record(tag, t)`` notes grad mode, inference mode and,
    for a tensor ``t``, whether it records a graph and whether it is an inference tensor."""
    out = []

    def record(tag, t=None):
        row = [tag, lib.is_grad_enabled(), lib.is_inference_mode_enabled()]
        if t is not None:
            row += [t.requires_grad, t.is_inference()]
        out.append(tuple(row))
    scenario(lib, record)
    assert lib.is_grad_enabled() and not lib.is_inference_mode_enabled(), "the scenario left a mode set"
    return out


def leaf(lib):
    return lib.ones(3, dtype=lib.float64, requires_grad=True)


def plain_call(lib, record):
    try:
        lib.set_grad_enabled(False)              # takes effect at once and stays
        record("after the call", leaf(lib) * 2)
        lib.set_grad_enabled(True)
        record("back on", leaf(lib) * 2)
    finally:
        lib.set_grad_enabled(True)


def as_context(lib, record):
    with lib.set_grad_enabled(False):
        record("inside", leaf(lib) * 2)
        with lib.set_grad_enabled(True):
            record("nested on", leaf(lib) * 2)
        record("inside again")
    record("after")


def as_decorator(lib, record):
    @lib.set_grad_enabled(False)
    def off(n):
        record(f"off {n}", leaf(lib) * 2)
        return off(n - 1) if n else None
    record("after decorating")                   # the bug was: decorating turned grad off here
    off(2)                                       # ... and the second call raised IndexError
    off(0)
    record("after calls")
    with lib.no_grad():
        @lib.set_grad_enabled(True)
        def on():
            record("on inside no_grad", leaf(lib) * 2)
        on()
        record("no_grad still")


def no_grad_and_enable_grad(lib, record):
    @lib.no_grad()
    def f():
        record("no_grad()", leaf(lib) * 2)

    @lib.no_grad
    def g():
        record("no_grad bare", leaf(lib) * 2)

    @lib.enable_grad
    def h():
        record("enable_grad bare", leaf(lib) * 2)
    f(), g()
    with lib.no_grad():
        h()
        record("no_grad")
        with lib.enable_grad():
            record("enable_grad", leaf(lib) * 2)
    record("after")


def one_instance_reentered(lib, record):
    off = lib.no_grad()
    with off:
        with lib.enable_grad():
            with off:
                record("inner")
            record("enable_grad")
        record("outer")


def exceptions_restore(lib, record):
    class Boom(Exception):
        pass

    for manager in (lambda: lib.no_grad(), lambda: lib.set_grad_enabled(False), lambda: lib.inference_mode(),
                    lambda: lib.enable_grad()):
        try:
            with lib.no_grad():
                with manager():
                    raise Boom
        except Boom:
            record("after raising")

    @lib.set_grad_enabled(False)
    def fails():
        raise Boom
    try:
        fails()
    except Boom:
        record("after a decorated raise")


def inference(lib, record):
    w = leaf(lib)
    with lib.inference_mode():
        a = lib.ones(3, dtype=lib.float64)
        record("inside", w * 2)
        record("made inside", a)
        record("requires_grad inside", lib.ones(3, dtype=lib.float64, requires_grad=True))
        with lib.enable_grad():
            record("enable_grad inside", w * 2)       # grad mode on, still no graph
        with lib.no_grad():
            record("no_grad inside")
        with lib.inference_mode(False):
            record("inference_mode(False) inside", w * 2)
    record("after", a * 3)
    with lib.no_grad():
        with lib.inference_mode(False):
            record("inference_mode(False) turns grad on", w * 2)

    @lib.inference_mode
    def bare():
        record("bare decorator", w * 2)

    @lib.inference_mode(False)
    def off():
        record("off decorator", w * 2)
    bare()
    with lib.inference_mode():
        off()
    record("a normal tensor", w)


SCENARIOS = [plain_call, as_context, as_decorator, no_grad_and_enable_grad, one_instance_reentered,
             exceptions_restore, inference]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_every_form_behaves_as_torch(scenario):
    ours = trace_of(tinyres, scenario)
    if torch is not None:
        assert ours == trace_of(torch, scenario)
    assert len(ours) >= 2


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_the_autograd_facade_has_the_same_names(scenario):
    names = ("is_grad_enabled", "is_inference_mode_enabled", "set_grad_enabled", "no_grad", "enable_grad",
             "inference_mode")
    facade = types.SimpleNamespace(ones=tinyres.ones, float64=tinyres.float64,
                                   **{name: getattr(autograd, name) for name in names})
    assert all(getattr(autograd, name) is getattr(tinyres, name) for name in names)
    assert trace_of(facade, scenario) == trace_of(tinyres, scenario)


def test_expected_values_without_torch():
    """The traces spelled out, so the test means something without torch as well."""
    assert trace_of(tinyres, as_decorator) == [
        ("after decorating", True, False), ("off 2", False, False, False, False),
        ("off 1", False, False, False, False), ("off 0", False, False, False, False),
        ("off 0", False, False, False, False), ("after calls", True, False),
        ("on inside no_grad", True, False, True, False), ("no_grad still", False, False)]
    trace = dict((row[0], row[1:]) for row in trace_of(tinyres, inference))
    assert trace["enable_grad inside"] == (True, True, False, True)
    assert trace["inference_mode(False) turns grad on"] == (True, False, True, False)
    assert trace["after"] == (True, False, False, False)      # a * 3 made outside: a normal tensor


def test_a_decorated_function_keeps_its_name_and_doc():
    @tinyres.no_grad()
    def evaluate(x):
        """Doc."""
        return x * 2

    @tinyres.set_grad_enabled(False)
    def also():
        pass
    assert (evaluate.__name__, evaluate.__doc__, also.__name__) == ("evaluate", "Doc.", "also")
    assert not evaluate(leaf(tinyres)).requires_grad


def test_decorated_methods_work():
    class Model:
        @tinyres.inference_mode()
        def predict(self, x):
            return x * 2
    y = Model().predict(leaf(tinyres))
    assert y.is_inference() and not y.requires_grad


@pytest.mark.parametrize("bad", ["yes", 1, None, 1.0])
def test_set_grad_enabled_needs_a_bool(bad):
    with pytest.raises(TypeError, match=r"set_grad_enabled\(\): argument 'mode' must be bool, not "):
        tinyres.set_grad_enabled(bad)
    assert tinyres.is_grad_enabled()
    if torch is not None:
        with pytest.raises(TypeError):
            torch.set_grad_enabled(bad)


def test_decorating_a_class_is_refused():
    with pytest.raises(TypeError, match="no_grad: can only decorate functions"):
        @tinyres.no_grad()
        class Model:
            pass


def test_the_mode_is_process_wide_like_the_engine_state():
    """tinyres's modes are module globals (torch's are per thread): documented, and checked
    here so that a change is deliberate."""
    seen = []
    with tinyres.no_grad():
        thread = threading.Thread(target=lambda: seen.append(tinyres.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [False]


# ---------------------------------------------------------------------- inference tensors

def test_tensors_made_in_inference_mode_are_inference_tensors():
    x = tinyres.randn(2, 3, dtype="float64")
    with tinyres.inference_mode():
        made = [tinyres.zeros(2), x * 2, tinyres.tensor([1.0])]
        views = [x.reshape(3, 2), x.detach(), x[0]]
    assert all(t.is_inference() for t in made)
    assert not any(v.is_inference() for v in views)          # a view is what its base is (torch)
    assert not x.is_inference() and not (made[1] * 2).is_inference()
    assert made[1].detach().is_inference()                  # a view of an inference tensor is one too
    assert not made[1].clone().is_inference()               # torch's way out: clone outside


def test_requires_grad_on_an_inference_tensor_outside_is_refused():
    with tinyres.inference_mode():
        a = tinyres.ones(3)
        a.requires_grad_()                                  # inside: allowed, as in torch
        b = tinyres.ones(3)
    with pytest.raises(RuntimeError, match="requires_grad: setting requires_grad=True on an inference tensor"):
        b.requires_grad_()
    with pytest.raises(RuntimeError, match="inference tensor outside inference_mode"):
        tinyres.nn.Parameter(b)
    b.clone().requires_grad_()                              # the way out
    if torch is not None:
        with torch.inference_mode():
            tb = torch.ones(3)
        with pytest.raises(RuntimeError, match="inference tensor outside InferenceMode"):
            tb.requires_grad_()


def test_check_not_inference_raises_torchs_error():
    with tinyres.inference_mode():
        a = tinyres.ones(3)
    w = tinyres.ones(3, requires_grad=True)
    autograd.check_not_inference([w, tinyres.ones(2)], "Mul")        # normal tensors pass
    with pytest.raises(RuntimeError, match=r"^Mul: Inference tensors cannot be saved for backward\. "):
        autograd.check_not_inference([w, a], "Mul")
    if torch is not None:
        with torch.inference_mode():
            ta = torch.ones(3)
        with pytest.raises(RuntimeError, match=r"^Inference tensors cannot be saved for backward\. "):
            ta * torch.ones(3, requires_grad=True)


def test_an_op_that_records_a_graph_refuses_an_inference_tensor():
    with tinyres.inference_mode():
        a = tinyres.ones(3, dtype="float64")
    w = tinyres.ones(3, dtype="float64", requires_grad=True)
    with pytest.raises(RuntimeError, match="Mul: Inference tensors cannot be saved for backward"):
        a * w
    np.testing.assert_array_equal((a * 2).numpy(), [2, 2, 2])        # no graph: fine
    with tinyres.no_grad():
        a * w                                                         # no graph: fine
