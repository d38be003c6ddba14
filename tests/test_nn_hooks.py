"""Module hooks (tinyres/nn/hooks.py, Module.register_*_hook): forward pre-hooks and forward
hooks, full backward pre-hooks and full backward hooks, each compared with torch in float64 --
what the hooks see, what their replacements do to the gradients, when they fire -- plus
Grad-CAM on ResNet-20 against its torch twin, handles, and hooks kept out of state_dict."""
import warnings

import numpy as np
import pytest
from helpers import needs_torch, tnn, torch

import tinyres
from tinyres import models, nn
from tinyres.nn.hooks import BackwardHookFunction, BackwardHookGather, RemovableHandle

if torch is not None:
    from torch_resnet import TORCH_TWINS

pytestmark = needs_torch
RTOL = dict(rtol=1e-10, atol=1e-12)


def numpy_of(t):
    if t is None:
        return None
    return t.detach().numpy() if torch is not None and isinstance(t, torch.Tensor) else t.numpy()


def assert_same(ours, theirs):
    """Tensors, tuples of them and None, in tinyres and torch, equal in float64."""
    if isinstance(ours, (tuple, list)):
        assert isinstance(theirs, (tuple, list)) and len(ours) == len(theirs), (ours, theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
    elif ours is None or theirs is None:
        assert ours is None and theirs is None, (ours, theirs)
    elif isinstance(ours, str):
        assert ours == theirs
    else:
        np.testing.assert_allclose(numpy_of(ours), numpy_of(theirs), **RTOL)


def linear_pair(n_in=3, n_out=2, seed=0):
    """A tinyres Linear and a torch Linear with the same float64 weights."""
    ours = nn.Linear(n_in, n_out).double()
    theirs = tnn.Linear(n_in, n_out).double()
    rng = np.random.default_rng(seed)
    state = {"weight": rng.standard_normal((n_out, n_in)), "bias": rng.standard_normal(n_out)}
    ours.load_state_dict(state)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    return ours, theirs


def mlp_pair(seed=0):
    """Linear(4, 5) - ReLU - Linear(5, 3) in both, same weights: a Sequential with children."""
    (a, ta), (b, tb) = linear_pair(4, 5, seed), linear_pair(5, 3, seed + 1)
    return nn.Sequential(a, nn.ReLU(), b), tnn.Sequential(ta, tnn.ReLU(), tb)


def inputs(*shape, seed=1, requires_grad=True):
    x = np.random.default_rng(seed).standard_normal(shape)
    return (tinyres.tensor(x, requires_grad=requires_grad), torch.tensor(x, requires_grad=requires_grad))


def upstream(shape, seed=2):
    g = np.random.default_rng(seed).standard_normal(shape)
    return tinyres.tensor(g), torch.tensor(g)


def run_both(make_hooks, pair=linear_pair, shape=(4, 3), register=None):
    """Register the same hooks (``make_hooks(lib)``: {method name: hook}) on a tinyres module and
    its torch twin, run forward and backward with one random upstream gradient, and return per
    library: the output, the input's gradient, the parameters' gradients and what the hooks saw."""
    results = []
    for ours, (module, x) in zip((True, False), zip(pair(), inputs(*shape))):
        lib = tinyres if ours else torch
        seen = []
        target = register(module) if register else module
        for method, hook in make_hooks(lib, seen).items():
            getattr(target, method)(hook)
        y = module(x)
        y.backward(upstream(tuple(y.shape))[0 if ours else 1])
        results.append((y, x.grad, [p.grad for p in module.parameters()], seen))
    return results


def assert_runs_match(make_hooks, **kw):
    ours, theirs = run_both(make_hooks, **kw)
    for a, b in zip(ours, theirs):
        assert_same(a, b)
    return ours


# ---------------------------------------------------------------------- forward hooks

def test_a_forward_pre_hook_sees_the_args_and_may_replace_them():
    def hooks(lib, seen):
        return {"register_forward_pre_hook": lambda m, args: (seen.append(args), args[0] * 2)[1]}   # one value
    ours = assert_runs_match(hooks)
    assert isinstance(ours[3][0], tuple) and len(ours[3][0]) == 1


def test_a_forward_pre_hook_may_return_a_tuple():
    def hooks(lib, seen):
        return {"register_forward_pre_hook": lambda m, args: (args[0] - 1,)}
    assert_runs_match(hooks)


def test_a_forward_hook_sees_args_and_output_and_may_replace_the_output():
    def hooks(lib, seen):
        return {"register_forward_hook": lambda m, args, out: (seen.append((args, out)), out * out)[1]}
    ours = assert_runs_match(hooks)
    (args, out), = ours[3]
    np.testing.assert_allclose(ours[0].numpy(), out.numpy() ** 2, **RTOL)     # the output was replaced


def test_forward_hooks_run_in_order_and_prepend_puts_one_first():
    outputs = []
    for module, x in zip(linear_pair(), inputs(4, 3)):
        order = []
        module.register_forward_hook(lambda m, a, o: order.append("first"))
        module.register_forward_hook(lambda m, a, o: (order.append("second"), o * o)[1])
        module.register_forward_hook(lambda m, a, o: order.append("third") or o + 1)    # sees the square
        module.register_forward_hook(lambda m, a, o: order.append("zeroth"), prepend=True)
        outputs.append(module(x))
        assert order == ["zeroth", "first", "second", "third"]
    assert_same(*outputs)


def test_forward_hooks_replacements_reach_the_gradients_as_in_torch():
    def hooks(lib, seen):
        return {"register_forward_hook": lambda m, args, out: out.exp() * args[0].sum()}
    assert_runs_match(hooks)


# ---------------------------------------------------------------------- backward hooks

def test_full_backward_hooks_see_grad_input_and_grad_output():
    def hooks(lib, seen):
        return {"register_full_backward_pre_hook": lambda m, go: seen.append(("pre", go)),
                "register_full_backward_hook": lambda m, gi, go: seen.append(("full", gi, go))}
    ours = assert_runs_match(hooks)
    seen = ours[3]
    assert [s[0] for s in seen] == ["pre", "full"]
    assert isinstance(seen[1][1], tuple) and isinstance(seen[1][1][0], tinyres.Tensor)
    np.testing.assert_allclose(seen[1][1][0].numpy(), ours[1].numpy(), **RTOL)     # grad_input is x's gradient


def test_a_backward_pre_hook_may_replace_grad_output():
    def hooks(lib, seen):
        return {"register_full_backward_pre_hook": lambda m, go: (go[0] * 3,),
                "register_full_backward_hook": lambda m, gi, go: seen.append(go)}    # sees the replacement
    assert_runs_match(hooks)


def test_a_full_backward_hook_may_replace_grad_input():
    def hooks(lib, seen):
        return {"register_full_backward_hook": lambda m, gi, go: (gi[0].clamp(-0.1, 0.1) * 5,)}
    assert_runs_match(hooks)


def test_hooks_on_the_children_of_a_sequential_fire_in_torchs_order():
    results = []
    for ours, (model, x) in zip((True, False), zip(mlp_pair(), inputs(6, 4))):
        seen = []
        for name in ("0", "1", "2"):
            child = model[int(name)]
            child.register_forward_hook(lambda m, a, o, name=name: seen.append(("forward", name, o)))
            child.register_full_backward_pre_hook(lambda m, go, name=name: seen.append(("pre", name, go)))
            child.register_full_backward_hook(lambda m, gi, go, name=name: seen.append(("full", name, gi, go)))
        model[2].register_full_backward_hook(lambda m, gi, go: (gi[0] * 0.5,))       # halves all below it
        y = model(x)
        y.backward(upstream(tuple(y.shape))[0 if ours else 1])
        results.append((seen, x.grad, [p.grad for p in model.parameters()]))
    (ours, theirs) = results
    assert [s[:2] for s in ours[0]] == [s[:2] for s in theirs[0]]
    assert [s[:2] for s in ours[0]][3:] == [("pre", "2"), ("full", "2"), ("pre", "1"), ("full", "1"),
                                            ("pre", "0"), ("full", "0")]
    for a, b in zip(ours, theirs):
        assert_same([s[2:] for s in a] if a is ours[0] else a, [s[2:] for s in b] if b is theirs[0] else b)


class TwoInTwoOut:
    """forward(a, b, scale) = (a * b * scale, a + b): several inputs and outputs, one not a tensor."""

    @staticmethod
    def make(lib):
        base = tinyres.nn.Module if lib is tinyres else tnn.Module

        class Both(base):
            def forward(self, a, b, scale):
                return a * b * scale, a + b
        return Both()


@pytest.mark.parametrize("use", ["first", "second", "both"])
@pytest.mark.parametrize("b_requires_grad", [True, False])
def test_several_inputs_and_outputs_some_unused_as_in_torch(use, b_requires_grad):
    runs = []
    for lib, a, b in zip((tinyres, torch), inputs(3, 2, seed=1), inputs(3, 2, seed=2, requires_grad=b_requires_grad)):
        module, seen = TwoInTwoOut.make(lib), []
        module.register_full_backward_pre_hook(lambda m, go: seen.append(("pre", go)))
        module.register_full_backward_hook(lambda m, gi, go: seen.append(("full", gi, go)))
        first, second = module(a, b, 1.5)
        g = upstream((3, 2))[0 if lib is tinyres else 1]
        loss = {"first": (first * g).sum(), "second": (second * g).sum(), "both": (first * g + second).sum()}[use]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loss.backward()
        runs.append((seen, a.grad, b.grad))
    ours, theirs = runs
    assert len(ours[0]) == 2 and ours[0][1][1][2] is None        # the float option: no gradient
    assert_same([s[1:] for s in ours[0]], [s[1:] for s in theirs[0]])
    assert_same(ours[1:], theirs[1:])


def test_an_unused_input_gets_zeros_and_an_output_without_grad_none_as_in_torch():
    """torch's rules, followed: in grad_input a tensor input whose gradient never came is
    zeros (and those zeros reach its .grad); in grad_output such an output is None."""
    runs = []
    for lib, a, b in zip((tinyres, torch), inputs(2, 3, seed=1), inputs(2, 3, seed=2)):
        base = tinyres.nn.Module if lib is tinyres else tnn.Module

        class OnlyA(base):
            def forward(self, a, b):
                return a * 2, b.detach() * 3
        module, seen = OnlyA(), []
        module.register_full_backward_pre_hook(lambda m, go: seen.append(go))
        module.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))
        first, second = module(a, b)
        assert not second.requires_grad
        (first.sum() + second.sum()).backward()
        runs.append((seen, a.grad, b.grad))
    assert runs[0][0][0][1] is None and np.array_equal(runs[0][0][1][0][1].numpy(), np.zeros((2, 3)))
    assert_same(runs[0], runs[1])


def test_with_no_input_requiring_grad_the_full_hook_fires_with_the_output_gradients():
    runs = []
    for ours, module, x in zip((True, False), linear_pair(), inputs(4, 3, requires_grad=False)):
        seen = []
        module.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # torch warns here
            module(x).sum().backward()
        runs.append((seen, module.weight.grad))
    assert len(runs[0][0]) == 1 and runs[0][0][0][0] == (None,)
    assert_same(runs[0], runs[1])


def test_hooks_fire_on_every_backward_through_a_retained_graph():
    module, _ = linear_pair()
    seen = []
    module.register_full_backward_hook(lambda m, gi, go: seen.append(gi[0].numpy()))
    x = inputs(4, 3)[0]
    y = module(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert len(seen) == 2 and np.array_equal(seen[0], seen[1])


def test_under_no_grad_forward_hooks_run_and_no_graph_is_made():
    module, _ = linear_pair()
    seen = []
    module.register_forward_hook(lambda m, a, o: seen.append(o))
    module.register_full_backward_hook(lambda m, gi, go: seen.append("backward"))
    with tinyres.no_grad():
        y = module(inputs(4, 3)[0])
    assert seen == [y] and y.grad_fn is None and not y.requires_grad


# ---------------------------------------------------------------------- Grad-CAM on ResNet-20

def grad_cam_both(layer):
    twin = TORCH_TWINS["resnet20"](num_classes=10, in_channels=3).double().eval()
    model = models.resnet20().double().eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in twin.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    model.load_state_dict({k: v.detach().numpy() for k, v in twin.state_dict().items()})
    images = np.random.default_rng(3).standard_normal((2, 3, 32, 32))
    out = []
    for lib, net in ((tinyres, model), (torch, twin)):
        store = {}
        conv = net.get_submodule(layer)
        handles = [conv.register_forward_hook(lambda m, a, o: store.__setitem__("activation", o.detach())),
                   conv.register_full_backward_hook(lambda m, gi, go: store.update(grad_output=go[0], grad_input=gi[0]))]
        logits = net(lib.tensor(images, dtype=lib.float64))
        score = logits[np.arange(2), logits.argmax(1)].sum() if lib is tinyres else \
            logits[torch.arange(2), logits.argmax(1)].sum()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score.backward()
        for h in handles:
            h.remove()
        act, grad = numpy_of(store["activation"]), numpy_of(store["grad_output"])
        weights = grad.mean(axis=(2, 3), keepdims=True)               # one weight per channel
        cam = np.maximum((weights * act).sum(axis=1), 0)              # Grad-CAM: ReLU of the weighted maps
        out.append((act, grad, store["grad_input"], cam))
    return out


@pytest.mark.parametrize("layer", ["layer3.2.conv2", "layer2.0.conv1", "conv1"])
def test_grad_cam_on_resnet20_matches_torch(layer):
    ours, theirs = grad_cam_both(layer)
    for a, b in zip(ours, theirs):
        if isinstance(a, np.ndarray):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        else:
            assert_same(a, b)
    assert ours[3].shape == {"layer3.2.conv2": (2, 8, 8), "layer2.0.conv1": (2, 16, 16), "conv1": (2, 32, 32)}[layer]
    assert (ours[2] is None) == (layer == "conv1")       # the image itself requires no grad
    assert ours[3].max() > 0


# ---------------------------------------------------------------------- handles and state

def test_handles_remove_their_hook_once():
    module, _ = linear_pair()
    seen = []
    first = module.register_forward_hook(lambda m, a, o: seen.append(1))
    second = module.register_forward_hook(lambda m, a, o: seen.append(2))
    assert isinstance(first, RemovableHandle) and second.id > first.id
    assert list(module._forward_hooks) == [first.id, second.id]
    first.remove()
    first.remove()                                  # again: harmless
    module(inputs(1, 3)[0])
    assert seen == [2]
    with module.register_forward_pre_hook(lambda m, a: seen.append("pre")):
        module(inputs(1, 3)[0])
    module(inputs(1, 3)[0])
    assert seen == [2, "pre", 2, 2]


@pytest.mark.parametrize("method", ["register_forward_pre_hook", "register_forward_hook",
                                    "register_full_backward_pre_hook", "register_full_backward_hook"])
def test_removed_hooks_do_not_fire_and_tables_are_torchs(method):
    module, twin = linear_pair()
    seen = []
    handle = getattr(module, method)(lambda *a: seen.append(a))
    table = {"register_forward_pre_hook": "_forward_pre_hooks", "register_forward_hook": "_forward_hooks",
             "register_full_backward_pre_hook": "_backward_pre_hooks",
             "register_full_backward_hook": "_backward_hooks"}[method]
    assert list(getattr(module, table)) == [handle.id]
    assert hasattr(twin, table)                   # the same names as torch's tables
    handle.remove()
    module(inputs(2, 3)[0]).sum().backward()
    assert seen == [] and not getattr(module, table)


def test_hooks_never_enter_a_state_dict():
    model, _ = mlp_pair()
    keys = list(model.state_dict())
    for child in model:
        child.register_forward_hook(lambda m, a, o: None)
        child.register_full_backward_hook(lambda m, gi, go: None)
    assert list(model.state_dict()) == keys == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    other, _ = mlp_pair(seed=5)
    other.load_state_dict(model.state_dict())        # hooks are no state: loads strictly
    assert all(not m._forward_hooks for m in other.modules())


# ---------------------------------------------------------------------- bad input

@pytest.mark.parametrize("method", ["register_forward_pre_hook", "register_forward_hook",
                                    "register_full_backward_pre_hook", "register_full_backward_hook"])
def test_a_hook_must_be_callable(method):
    with pytest.raises(TypeError, match=rf"^{method}: expected a callable hook, got int$"):
        getattr(nn.Linear(2, 2), method)(3)


@pytest.mark.parametrize("method,hook,match", [
    ("register_full_backward_pre_hook", lambda m, go: (go[0], go[0]),
     r"register_full_backward_pre_hook: the hook returned 2 gradients as grad_output, expected 1"),
    ("register_full_backward_hook", lambda m, gi, go: (gi[0], gi[0]),
     r"register_full_backward_hook: the hook returned 2 gradients as grad_input, expected 1"),
    ("register_full_backward_hook", lambda m, gi, go: (gi[0][:1],),
     r"register_full_backward_hook: the hook returned grad_input\[0\] of shape \(1, 3\); expected \(4, 3\)"),
])
def test_wrong_replacements_are_refused_as_in_torch(method, hook, match):
    for ours, module, x in zip((True, False), linear_pair(), inputs(4, 3)):
        getattr(module, method)(hook)
        with pytest.raises(RuntimeError, match=match if ours else None):
            module(x).sum().backward()


def test_a_hook_without_input_gradients_must_return_none():
    for ours, module, x in zip((True, False), linear_pair(), inputs(4, 3, requires_grad=False)):
        module.register_full_backward_hook(lambda m, gi, go: (go[0],))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RuntimeError, match="must return None" if ours else "should always return None"):
                module(x).sum().backward()


# ---------------------------------------------------------------------- the nodes, for either engine

@pytest.mark.parametrize("as_tensor", [False, True], ids=["arrays", "tensors"])
def test_the_identity_nodes_return_the_kind_of_gradient_they_get(as_tensor):
    """The engine hands backward arrays today; the engine of issue 21 hands it Tensors.  The
    hook nodes pass on the kind they receive."""
    a, b = tinyres.ones(2, 3, dtype="float64", requires_grad=True), tinyres.ones(4, dtype="float64", requires_grad=True)
    seen = []
    hub = BackwardHookGather.apply(a, b, on_grads=lambda grads: seen.append(grads) or [g for g in grads])
    gather = hub.grad_fn
    picks = [BackwardHookFunction.apply(hub, array=t.array, gather=gather, slot=i) for i, t in enumerate((a, b))]
    kind = tinyres.Tensor if as_tensor else np.ndarray
    gy = np.full((2, 3), 2.0)
    zero = picks[0].grad_fn.backward(tinyres.Tensor(gy) if as_tensor else gy)
    assert isinstance(zero, kind) and zero.shape == () and zero.dtype == np.float64
    out = gather.backward(tinyres.zeros((), dtype="float64") if as_tensor else np.zeros(()))
    assert isinstance(out[0], kind) and out[1] is None            # b's gradient never came
    np.testing.assert_array_equal(np.asarray(out[0]), gy)
    assert seen[0][1] is None


# ---------------------------------------------------------------------- with the second-generation engine

def cube_module(lib):
    base = tinyres.nn.Module if lib is tinyres else tnn.Module

    class Cube(base):
        def forward(self, x):
            return x * x * x
    return Cube()


def test_gradients_of_gradients_go_through_a_hooked_module_as_in_torch():
    runs = []
    for lib, x in zip((tinyres, torch), inputs(5, seed=4)):
        module, seen = cube_module(lib), []
        module.register_full_backward_hook(lambda m, gi, go: seen.append((gi[0].detach(), go[0].detach())))
        (g,) = (tinyres.autograd if lib is tinyres else torch.autograd).grad(module(x).sum(), x, create_graph=True)
        g.sum().backward()                          # d/dx sum(3 x^2) = 6 x
        runs.append((g, x.grad, seen))
        np.testing.assert_allclose(numpy_of(x.grad), 6 * numpy_of(x), **RTOL)
    assert_same(runs[0], runs[1])
    assert len(runs[0][2]) == 1                     # the hooks fire in the first backward only


def test_in_place_on_a_wrapped_input_is_refused_as_in_torch():
    """A wrapped input shares its tensor's memory and version counter: changing it in place
    inside forward would bypass the hook's node, so both libraries refuse, at the write."""
    for lib, a in zip((tinyres, torch), inputs(3)):
        base = tinyres.nn.Module if lib is tinyres else tnn.Module

        class Bump(base):
            def forward(self, x):
                x.add_(1)
                return x * 2
        module = Bump()
        module.register_full_backward_hook(lambda m, gi, go: None)
        x = a.exp()
        with pytest.raises(RuntimeError, match="is a view and is being modified inplace"):
            module(x)
        assert x._version == 0
