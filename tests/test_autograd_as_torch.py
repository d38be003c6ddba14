"""The engine where a wrong answer would be silent: views made before an in-place write,
hooks on a leaf reached twice, retained gradients, one tensor at two places of a
composite, what an op saves.  Each case runs the same code on tinyres and on torch
(float64) and compares what comes out -- a gradient, or that both raise.
"""
import numpy as np
import pytest

import tinyres
from helpers import needs_torch, torch

pytestmark = needs_torch


def both(case):
    """``case(lib)`` for tinyres and for torch: (tinyres's result, torch's result)."""
    return case(tinyres), case(torch)


def leaf(lib, values):
    return lib.tensor(values, dtype=lib.float64, requires_grad=True)


def outcome(run):
    """What ``run()`` returns as nested lists, or 'raises' when it raises a RuntimeError."""
    try:
        out = run()
    except RuntimeError:
        return "raises"
    return [np.asarray(o.detach().numpy() if hasattr(o, "detach") else o).tolist() for o in out]


def same(a, b):
    assert (a == "raises") == (b == "raises"), (a, b)
    if a != "raises":
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- views and in-place writes

VIEW_CASES = {
    "base written, view read": lambda a: (lambda v: (a.mul_(2), v))(a[0])[1],
    "one view written, another read": lambda a: (lambda v1, v2: (v1.mul_(3), v2))(a[0], a[0])[1],
    "a row written, the transpose read": lambda a: (lambda v: (a[1].mul_(5), v * v))(a.t())[1],
    "base written twice, a column read": lambda a: (lambda v: (a.add_(1), a.mul_(a * 1), v))(a[:, 1])[2],
    "expanded view read after a write": lambda a: (lambda v: (a.mul_(4), v))(a[:1].expand(3, 3))[1],
}


@pytest.mark.parametrize("name", list(VIEW_CASES))
def test_a_view_made_before_an_in_place_write_follows_it(name):
    def case(lib):
        x = leaf(lib, np.arange(1.0, 10.0).reshape(3, 3))
        return outcome(lambda: (lambda y: (y.sum().backward(), [x.grad])[1])(VIEW_CASES[name](x * 1)))
    same(*both(case))


def test_expand_shares_its_base_version_counter():
    def case(lib):
        h = leaf(lib, [1.0, 2.0, 3.0]) * 1
        w = leaf(lib, [1.0, 2.0, 3.0])
        z = (h.expand(2, 3) * w).sum()
        h.mul_(10)
        return outcome(lambda: (z.backward(), [w.grad])[1])
    assert both(case) == ("raises", "raises")
    x = tinyres.zeros(2, 3)
    v = x[:1].expand(2, 3)
    x.add_(1)
    assert v._version == 1


# ---------------------------------------------------------------------- hooks and retained gradients

def test_a_leaf_hook_sees_the_summed_gradient_once():
    def case(lib):
        x, calls = leaf(lib, [1.0, 2.0, 3.0]), []
        x.register_hook(lambda g: (calls.append(1), g.clamp(max=1.5))[1])
        (x * 1 + x * 1).sum().backward()
        by_grad, = lib.autograd.grad((x * 1 + x * 1).sum(), x)
        return x.grad.tolist(), by_grad.tolist(), len(calls)
    assert both(case)[0] == both(case)[1] == ([1.5] * 3, [1.5] * 3, 2)


def test_a_tied_weight_runs_its_hook_once_per_backward():
    def case(lib):
        lin, calls = (tinyres if lib is tinyres else torch).nn.Linear(2, 2).double(), []
        lin.weight.register_hook(lambda g: calls.append(1))
        lin(lin(lib.ones(1, 2, dtype=lib.float64))).sum().backward()
        return len(calls)
    assert both(case) == (1, 1)


def test_a_post_accumulate_grad_hook_runs_after_backward_fills_grad():
    def case(lib):
        p, seen = leaf(lib, [1.0, 2.0, 3.0]), []
        handle = p.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
        (p * 2).sum().backward()
        (p * p).sum().backward(inputs=[p])
        lib.autograd.grad((p * 2).sum(), p)          # accumulates nothing: no call
        handle.remove()
        (p * 2).sum().backward()
        return seen, p.grad.tolist()
    assert both(case)[0] == both(case)[1] == ([[2.0] * 3, [4.0, 6.0, 8.0]], [6.0, 8.0, 10.0])


def test_a_post_accumulate_grad_hook_is_refused_where_torch_refuses_it():
    for lib in (tinyres, torch):
        p = leaf(lib, [1.0])
        with pytest.raises(RuntimeError, match="non-leaf"):
            (p * 2).register_post_accumulate_grad_hook(lambda t: None)
        with pytest.raises(RuntimeError, match="doesn't require gradient"):
            lib.ones(1).register_post_accumulate_grad_hook(lambda t: None)
        p.register_post_accumulate_grad_hook(lambda t: 1)
        with pytest.raises(TypeError, match="hook returned 'int'"):
            (p * 2).sum().backward()


def test_retained_gradients_accumulate_and_follow_an_in_place_write():
    def case(lib):
        x = leaf(lib, [1.0, 2.0])
        a = x * 2
        a.retain_grad()
        loss = (a * a).sum()
        loss.backward(retain_graph=True)
        loss.backward()
        b = x * 2
        b.retain_grad()
        b.mul_(3)
        (b * 1).sum().backward()
        return a.grad.tolist(), b.grad.tolist(), a.retains_grad, b.retains_grad
    assert both(case)[0] == both(case)[1]


# ---------------------------------------------------------------------- composites and what ops save

def test_one_tensor_at_two_places_of_a_composite_gets_each_places_gradient():
    def case(lib):
        F = tinyres.nn.functional if lib is tinyres else torch.nn.functional
        x = leaf(lib, [-1.0, 2.0, 0.5])
        g, = lib.autograd.grad(F.binary_cross_entropy_with_logits(x, x, reduction="sum"), x, create_graph=True)
        h, = lib.autograd.grad(g.sum(), x)
        return [g, h]
    same(*both(lambda lib: outcome(lambda: case(lib))))


def test_a_probability_target_that_is_zero_has_a_gradient_under_create_graph():
    def case(lib):
        F = tinyres.nn.functional if lib is tinyres else torch.nn.functional
        x = leaf(lib, [[1.0, 2.0, 0.5], [0.3, -1.0, 2.0]])
        t = leaf(lib, [[0.0, 0.3, 0.7], [0.5, 0.5, 0.0]])
        gx, gt = lib.autograd.grad(F.cross_entropy(x, t), [x, t], create_graph=True)
        return [gx, gt] + list(lib.autograd.grad((gx * gx).sum() + gt.sum(), [x, t]))
    same(*both(lambda lib: outcome(lambda: case(lib))))


@pytest.mark.parametrize("input_needs_grad", [False, True])
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_an_optimizer_step_between_two_backwards_raises_where_torch_does(optimizer, input_needs_grad):
    """The step writes the weight in place (a new version); Linear keeps the weight only for
    the input's gradient, so only then is the second backward an error (a GAN's classic)."""
    def case(lib):
        lin = (tinyres if lib is tinyres else torch).nn.Linear(2, 2).double()
        x = lib.ones(1, 2, dtype=lib.float64, requires_grad=input_needs_grad)
        opt = getattr(lib.optim, optimizer)(lin.parameters(), lr=0.1)
        y = (lin(x) ** 2).sum()
        y.backward(retain_graph=True)
        opt.step()
        return outcome(lambda: (y.backward(), [])[1])        # (the weights differ: only whether it raises)
    same(*both(case))


def test_a_matmul_keeps_only_what_its_wanted_gradients_read():
    def case(lib):
        h, c = leaf(lib, [[1.0, 2.0], [3.0, 4.0]]) * 1, lib.tensor([[1.0, 0.5], [2.0, 1.0]], dtype=lib.float64)
        w = leaf(lib, [[1.0, 0.5], [2.0, 1.0]])
        y1, y2 = (h @ c).sum(), (c @ w).sum()
        c.mul_(2)                                   # read by neither gradient: no error, as in torch
        return outcome(lambda: (y1.backward(), y2.backward(), [w.grad])[2])
    same(*both(case))


def test_init_and_load_state_dict_are_in_place_writes():
    lin = tinyres.nn.Linear(2, 2)
    before = lin.weight._version
    tinyres.nn.init.normal_(lin.weight)
    lin.load_state_dict(lin.state_dict())
    assert lin.weight._version == before + 2


# ---------------------------------------------------------------------- grad() runs only what leads to its inputs

def test_grad_leaves_other_branches_unrun_and_unfreed():
    def case(lib):
        x, w = leaf(lib, [1.0, 2.0]), leaf(lib, [3.0, 4.0])
        calls = []
        a, b = x * 2, w * 3
        b.register_hook(lambda g: calls.append(1))
        lib.autograd.grad((a * b).sum(), x)          # b's branch leads to no input: no hook
        l1, l2 = (x * 2).sum(), (w * 3).sum()
        lib.autograd.grad(l1 + l2, x)
        l2.backward()                                # l2's branch was not run, so not freed
        return len(calls), w.grad.tolist()
    assert both(case)[0] == both(case)[1] == (0, [3.0, 3.0])


def test_functional_results_stay_connected_under_create_graph():
    def case(lib):
        fn = lib.autograd.functional
        x = leaf(lib, [0.3, -0.6, 0.5])
        fn.jacobian(lambda t: t ** 3, x, create_graph=True).sum().backward()
        _, hv = fn.hvp(lambda t: (t ** 3).sum(), x, lib.ones(3, dtype=lib.float64), create_graph=True)
        _, jv = fn.jvp(lambda t: t.tanh(), x, lib.ones(3, dtype=lib.float64), create_graph=True)
        return [x.grad] + list(lib.autograd.grad(hv.sum() + jv.sum(), x))
    same(*both(lambda lib: outcome(lambda: case(lib))))


@pytest.mark.parametrize("call", ["relu_", "ReLU(inplace=True)", "leaky_relu", "hardtanh", "silu", "dropout"])
def test_in_place_activations_on_a_leaf_that_requires_grad_are_refused(call):
    def case(lib):
        F = tinyres.nn.functional if lib is tinyres else torch.nn.functional
        nn = tinyres.nn if lib is tinyres else torch.nn
        run = {"relu_": lambda x: lib.relu_(x), "ReLU(inplace=True)": lambda x: nn.ReLU(inplace=True)(x),
               "leaky_relu": lambda x: F.leaky_relu(x, inplace=True), "hardtanh": lambda x: F.hardtanh(x, inplace=True),
               "silu": lambda x: F.silu(x, inplace=True), "dropout": lambda x: F.dropout(x, inplace=True)}[call]
        x = leaf(lib, [-1.0, 2.0])
        refused = outcome(lambda: [run(x)])
        y = x * 1                                    # in a graph: written in place, as torch writes it
        z = run(y)
        return refused, z is y, y._version > 0
    assert both(case)[0] == both(case)[1] == ("raises", True, True)


# ---------------------------------------------------------------------- the rest of torch's autograd API

def test_in_place_on_a_view_of_a_plain_buffer_gives_the_buffer_a_history():
    """``buf[0:2].add_(w)``: the buffer needs no grad, w does; the buffer's history must see
    the write, or w's gradient through the buffer is silently lost."""
    def case(lib):
        buf, w = lib.zeros(4, dtype=lib.float64), leaf(lib, [1.0, 2.0])
        buf[0:2].add_(w * 3)
        (buf * lib.arange(4, dtype=lib.float64)).sum().backward()
        return buf.requires_grad, w.grad.tolist()
    assert case(tinyres) == case(torch) == (True, [0.0, 3.0])


def test_backward_with_inputs_fills_only_those_and_runs_a_leafs_hooks_once():
    def case(lib):
        x, u = leaf(lib, [1.0, 2.0, 3.0]), leaf(lib, [1.0, 1.0, 1.0])
        calls = []
        x.register_hook(lambda g: calls.append(1))
        y = x * 2
        lib.autograd.backward([(y * y * u).sum()], inputs=[x, y])
        z = x * 2
        (z * z * u).sum().backward(inputs=[x])          # accumulates, through a fresh graph
        return x.grad.tolist(), y.grad.tolist(), u.grad, len(calls)
    assert case(tinyres) == case(torch)
    for lib in (tinyres, torch):
        x = leaf(lib, [1.0])
        with pytest.raises(RuntimeError, match="cannot be empty"):
            (x * 2).sum().backward(inputs=[])


def test_grad_materialize_grads_and_is_grads_batched_as_torch():
    def case(lib):
        x, unused = leaf(lib, [1.0, 2.0, 3.0]), leaf(lib, [1.0, 1.0])
        y = x * x
        gx, gu = lib.autograd.grad(y.sum(), [x, unused], materialize_grads=True, retain_graph=True)
        jac, = lib.autograd.grad(y, x, lib.eye(3, dtype=lib.float64), is_grads_batched=True, create_graph=True)
        hess_row, = lib.autograd.grad(jac[1].sum(), x)          # the batched result is differentiable
        batched_unused = lib.autograd.grad(x.sum() * 1, [x, unused], lib.ones(2, dtype=lib.float64),
                                           is_grads_batched=True, materialize_grads=True)
        return [gx, gu, jac, hess_row] + list(batched_unused)
    same(outcome(lambda: case(tinyres)), outcome(lambda: case(torch)))
    for lib in (tinyres, torch):
        x = leaf(lib, [1.0])
        with pytest.raises(ValueError, match="allow_unused"):
            lib.autograd.grad(x.sum(), x, allow_unused=False, materialize_grads=True)


def test_a_grad_mode_decorator_holds_inside_each_step_of_a_generator():
    def case(lib):
        @lib.no_grad()
        def steps():
            got = yield lib.is_grad_enabled()
            yield (got, lib.is_grad_enabled())
        gen = steps()
        first = next(gen)
        outside = lib.is_grad_enabled()
        second = gen.send("sent")
        gen.close()
        return first, outside, second, lib.is_grad_enabled()
    assert case(tinyres) == case(torch) == (False, True, ("sent", False), True)


def test_inference_tensors_outside_inference_mode_as_torch():
    def case(lib):
        with lib.inference_mode():
            t = lib.ones(3, dtype=lib.float64)
        flags = [t.reshape(3, 1).is_inference(), t[1:].is_inference(), (t + 1).is_inference()]
        try:
            t.add_(1)
            flags.append("written")
        except RuntimeError as e:
            flags.append("refused" if "Inplace update to inference tensor outside InferenceMode" in str(e) else str(e))
        written = t.tolist()             # (torch writes, then raises; tinyres refuses before writing)
        with lib.inference_mode():
            t.add_(1)                    # inside, it may be written
        return flags, t.tolist()[0] - written[0]
    assert case(tinyres) == case(torch) == ([True, True, False, "refused"], 1.0)


def test_module_forward_hooks_with_kwargs_and_always_call_as_torch():
    def case(lib):
        seen = []

        class Scale(lib.nn.Module):
            def forward(self, x, scale=1.0):
                if scale < 0:
                    raise ValueError("negative scale")
                return x * scale
        m = Scale()
        m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"scale": kwargs.get("scale", 1.0) * 2}),
                                    with_kwargs=True)
        m.register_forward_hook(lambda mod, args, kwargs, out: seen.append(("kw", kwargs["scale"])) or out + 1,
                                with_kwargs=True)
        always = m.register_forward_hook(lambda mod, args, out: seen.append(("always", out is None)), always_call=True)
        out = m(lib.ones(2, dtype=lib.float64), scale=3.0)
        with pytest.raises(ValueError, match="negative scale"):
            m(lib.ones(2, dtype=lib.float64), scale=-1.0)
        always.remove()
        m(lib.ones(2, dtype=lib.float64))
        with pytest.raises(RuntimeError, match="must return None or a tuple"):
            bad = Scale()
            bad.register_forward_pre_hook(lambda mod, args, kwargs: args, with_kwargs=True)
            bad(lib.ones(1, dtype=lib.float64))
        return out.tolist(), seen, dict(m._forward_hooks_always_called), len(m._forward_hooks_with_kwargs)
    assert case(tinyres) == case(torch)


def test_a_view_made_before_a_write_to_a_plain_buffer_joins_the_graph():
    """``row = buf[0:1]`` then ``buf.add_(w)``: row's history is the buffer's new one, so its
    term of the loss reaches w (reading row.requires_grad first must not hide that)."""
    def case(lib):
        w = leaf(lib, [2.0, 3.0])
        buf = lib.zeros(2, dtype=lib.float64)
        row = buf[0:1]
        buf.add_(w)
        needs = row.requires_grad
        ((buf * buf).sum() + (row * 5).sum()).backward()
        return needs, w.grad.tolist()
    assert case(tinyres) == case(torch) == (True, [9.0, 6.0])


@pytest.mark.parametrize("write", ["relu_", "F.relu inplace", "ReLU(inplace=True)", "leaky_relu inplace"])
def test_in_place_activations_refuse_an_inference_tensor_outside_inference_mode(write):
    def case(lib):
        with lib.inference_mode():
            t = lib.tensor([-1.0, 2.0], dtype=lib.float64)
        calls = {"relu_": lambda: t.relu_(), "F.relu inplace": lambda: lib.nn.functional.relu(t, inplace=True),
                 "ReLU(inplace=True)": lambda: lib.nn.ReLU(inplace=True)(t),
                 "leaky_relu inplace": lambda: lib.nn.functional.leaky_relu(t, 0.1, inplace=True)}
        try:
            calls[write]()
            return "written", t.tolist()
        except RuntimeError as e:
            return "Inplace update to inference tensor outside InferenceMode" in str(e), t.tolist()
    (ours, values), (theirs, _) = case(tinyres), case(torch)
    assert ours is theirs is True and values == [-1.0, 2.0]      # (torch writes, then raises; tinyres refuses first)


def test_a_view_of_a_normal_tensor_made_in_inference_mode_is_normal():
    def case(lib):
        n = lib.ones(4, dtype=lib.float64)
        with lib.inference_mode():
            v, d, fresh = n.reshape(2, 2), n.detach(), n * 2
        flags = [v.is_inference(), d.is_inference(), fresh.is_inference()]
        v.mul_(3)
        w = leaf(lib, [[1.0, 1.0], [1.0, 1.0]])
        (v * w).sum().backward()
        return flags, n.tolist(), w.grad.tolist()
    assert case(tinyres) == case(torch)


def test_an_always_call_hook_sees_the_output_made_before_a_hook_raised():
    def case(lib):
        seen = []
        m = lib.nn.Identity()

        def bad(mod, args, out):
            raise ValueError("bad hook")
        m.register_forward_hook(bad)
        m.register_forward_hook(lambda mod, args, out: seen.append(out.tolist()), always_call=True)
        with pytest.raises(ValueError, match="bad hook"):
            m(lib.ones(2, dtype=lib.float64))
        return seen
    assert case(tinyres) == case(torch) == [[1.0, 1.0]]
