"""tinyres.nn.Module, Parameter and the containers, checked against torch.nn on the same
architectures: registration order, names, state_dict keys, reprs, modes, dtype moves, and
load_state_dict's errors."""
import collections
import copy
import pickle
import re

import numpy as np
import pytest
from helpers import needs_torch, torch  # torch: None without PyTorch

import tinyres
import tinyres.nn as nn
from cupy_double import on  # the CuPy double's check; conftest.py has its fixture, fake_cupy
from tinyres.nn import init

LIBS = {"tinyres": (tinyres, tinyres.nn), "torch": (torch, torch and torch.nn)}   # torch: None without PyTorch


def make_net(lib_name):
    """The same small model in tinyres and in torch: every kind of registration."""
    lib, n = LIBS[lib_name]

    class Net(n.Module):
        def __init__(self):
            super().__init__()
            self.conv = n.Conv2d(3, 4, 3, bias=False)
            self.bn = n.BatchNorm2d(4)
            self.scale = n.Parameter(lib.ones(4))
            self.register_buffer("step", lib.zeros(1))
            self.register_buffer("cache", lib.zeros(2), persistent=False)
            self.plain = lib.zeros(3)              # a plain tensor attribute: not registered
            self.layers = n.Sequential(n.Linear(4, 5), n.ReLU(), n.Linear(5, 2))
            self.heads = n.ModuleList([n.Linear(2, 2), n.Linear(2, 2), n.Linear(2, 3)])
            self.named = n.ModuleDict({"b": n.Identity(), "a": n.Dropout(0.2)})

    return Net()


def names(pairs):
    return [name for name, _ in pairs]


# ---------------------------------------------------------------------- Parameter

def test_parameter_is_a_leaf_that_requires_grad_and_shares_data():
    data = tinyres.tensor([1.0, 2.0])
    p = nn.Parameter(data)
    assert isinstance(p, tinyres.Tensor) and p.requires_grad and p.is_leaf
    assert p.array is data.array
    assert not nn.Parameter(data, requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    y = (p * 3).sum()
    assert type(y) is tinyres.Tensor
    y.backward()
    np.testing.assert_array_equal(p.grad.numpy(), [3, 3])


@needs_torch
def test_parameter_repr_matches_torch():
    assert repr(nn.Parameter(tinyres.tensor([1.0, 2.0]))) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))


# ---------------------------------------------------------------------- registration, names, order

@needs_torch
@pytest.mark.parametrize("walk", ["named_parameters", "named_buffers", "named_modules", "named_children"])
def test_names_and_order_match_torch(walk):
    assert names(getattr(make_net("tinyres"), walk)()) == names(getattr(make_net("torch"), walk)())


@needs_torch
def test_state_dict_keys_match_torch():
    keys = list(make_net("tinyres").state_dict())
    assert keys == list(make_net("torch").state_dict())
    assert "cache" not in keys and "plain" not in keys


def test_registration_tables():
    net = make_net("tinyres")
    assert list(net._parameters) == ["scale"]
    assert list(net._buffers) == ["step", "cache"]
    assert list(net._modules) == ["conv", "bn", "layers", "heads", "named"]
    assert net.scale is net._parameters["scale"] and net.bn is net._modules["bn"]
    assert len(list(net.parameters(recurse=False))) == 1


def test_reassigning_moves_between_tables_and_delattr_unregisters():
    net = make_net("tinyres")
    net.scale = nn.Linear(1, 1)               # a parameter name now holds a module
    assert "scale" not in net._parameters and "scale" in net._modules
    net.conv = None                           # a registered name may be set to None
    assert net.conv is None and "conv.weight" not in net.state_dict()
    del net.bn
    assert "bn" not in net._modules and not hasattr(net, "bn")
    net.step = tinyres.ones(1)                # a buffer may be replaced by another tensor
    assert net.state_dict()["step"].item() == 1


@needs_torch
def test_a_replaced_parameter_or_child_keeps_its_place():
    """torch's __setattr__ replaces a parameter (a child) in place: the order of
    parameters(), children() and state_dict() stays; a name moving to another table
    goes last there."""
    orders = {}
    for lib, (root, tnn) in LIBS.items():
        net = tnn.Sequential(tnn.Linear(2, 3), tnn.ReLU(), tnn.Linear(3, 1))
        net[0].weight = tnn.Parameter(root.zeros(3, 2))
        net[0] = tnn.Linear(2, 3)                        # Sequential's __setitem__: setattr
        setattr(net, "1", tnn.Tanh())
        net[2].bias = None
        net[2].bias = tnn.Parameter(root.zeros(1))
        orders[lib] = (list(net.state_dict()), [type(m).__name__ for m in net.children()])
    assert orders["tinyres"] == orders["torch"]


@needs_torch
def test_shared_parameters_appear_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    tlin = torch.nn.Linear(2, 2)
    tseq = torch.nn.Sequential(tlin, torch.nn.ReLU(), tlin)
    assert names(seq.named_parameters()) == names(tseq.named_parameters()) == ["0.weight", "0.bias"]
    assert list(seq.state_dict()) == list(tseq.state_dict())       # state_dict keeps both names
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight
    assert len(list(nn.Sequential(a, b).parameters())) == 3


@pytest.mark.parametrize("action, error, match", [
    (lambda m: setattr(m, "weight", tinyres.zeros(3, 2)), TypeError, "cannot assign 'Tensor' as parameter 'weight'"),
    (lambda m: m.register_buffer("b", 3), TypeError, "cannot assign 'int' object to buffer 'b'"),
    (lambda m: m.register_parameter("p", tinyres.zeros(2)), TypeError, "to parameter 'p'"),
    (lambda m: m.add_module("m", 3), TypeError, "int is not a Module subclass"),
    (lambda m: m.register_buffer("a.b", tinyres.zeros(1)), KeyError, "must not contain"),
    (lambda m: m.register_buffer("", tinyres.zeros(1)), KeyError, "empty"),
    (lambda m: m.register_buffer("in_features", tinyres.zeros(1)), KeyError, "'in_features' already exists"),
    (lambda m: m.register_parameter(1, None), TypeError, "should be a string"),
    (lambda m: m.missing, AttributeError, "'Linear' object has no attribute 'missing'"),
    (lambda m: m.train("yes"), ValueError, "boolean"),
    (lambda m: m.to(tinyres.int64), TypeError, "floating point"),
    (lambda m: nn.Module()(1), NotImplementedError, "forward"),
])
def test_registration_errors(action, error, match):
    with pytest.raises(error, match=match):
        action(nn.Linear(2, 3))


def test_assigning_before_init_is_an_error():
    class Bad(nn.Module):
        def __init__(self):
            self.lin = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\)"):
        Bad()


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))])
def test_copy_and_pickle_keep_the_structure(clone):
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ModuleList([nn.Linear(2, 2)]))
    copied = clone(net)
    assert repr(copied) == repr(net) and list(copied.state_dict()) == list(net.state_dict())
    assert isinstance(copied[0].weight, nn.Parameter) and copied[0].weight is not net[0].weight
    np.testing.assert_array_equal(copied[0].weight.numpy(), net[0].weight.numpy())


# ---------------------------------------------------------------------- modes and gradients

def test_train_eval_reach_every_module():
    net = make_net("tinyres")
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net.layers.train(False)
    assert net.training and not any(m.training for m in net.layers.modules())


def test_zero_grad_and_requires_grad_():
    lin = nn.Linear(3, 2)
    lin(tinyres.ones(4, 3)).sum().backward()
    lin.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in lin.parameters())
    lin.zero_grad()
    assert all(p.grad is None for p in lin.parameters())
    assert lin.requires_grad_(False) is lin
    assert not any(p.requires_grad for p in lin.parameters())
    assert not lin(tinyres.ones(1, 3)).requires_grad


@needs_torch
def test_apply_visits_children_first_like_torch():
    seen, tseen = [], []
    make_net("tinyres").apply(lambda m: seen.append(type(m).__name__))
    make_net("torch").apply(lambda m: tseen.append(type(m).__name__))
    assert seen == tseen


def test_get_submodule():
    net = make_net("tinyres")
    assert net.get_submodule("layers.2") is net.layers[2]
    assert net.get_submodule("") is net
    with pytest.raises(AttributeError, match="no submodule 'x'"):
        net.get_submodule("layers.x")


# ---------------------------------------------------------------------- dtype and device

@pytest.mark.parametrize("convert", [
    lambda m: m.to(tinyres.float64), lambda m: m.to("float64"), lambda m: m.double(),
    lambda m: m.to(dtype=tinyres.float64), lambda m: m.to(tinyres.zeros(1, dtype=tinyres.float64)),
])
def test_to_float64_keeps_parameter_objects_and_integer_buffers(convert):
    net = make_net("tinyres")
    params = list(net.parameters())
    net.bn.weight.grad = tinyres.ones(4)
    assert convert(net) is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(isinstance(p, nn.Parameter) and p.dtype == np.float64 for p in net.parameters())
    assert net.bn.weight.grad.dtype == np.float64
    assert net.bn.running_var.dtype == np.float64 and net.step.dtype == np.float64
    assert net.bn.num_batches_tracked.dtype == np.int64
    net.float()
    assert all(t.dtype == np.float32 for t in net.state_dict().values() if t.dtype.kind == "f")


def test_to_cpu_is_a_no_op_that_returns_self():
    lin = nn.Linear(2, 2)
    w = lin.weight.array
    assert lin.to("cpu") is lin and lin.cpu() is lin and lin.weight.array is w


# ---------------------------------------------------------------------- repr

@needs_torch
def test_repr_equals_torch():
    assert repr(make_net("tinyres")) == repr(make_net("torch"))


@needs_torch
@pytest.mark.parametrize("build", [
    lambda n: n.Conv2d(3, 16, 3, padding=1, bias=False),
    lambda n: n.Conv2d(4, 8, (1, 3), stride=(2, 1), dilation=2, groups=2),
    lambda n: n.Conv2d(4, 8, 3, padding="same"),
    lambda n: n.Conv1d(2, 4, 5, padding=2),
    lambda n: n.BatchNorm2d(16),
    lambda n: n.BatchNorm1d(3, eps=1e-3, momentum=None, affine=False, track_running_stats=False),
    lambda n: n.BatchNorm2d(2, bias=False),
    lambda n: n.Linear(4, 3, bias=False),
    lambda n: n.ReLU(inplace=True),
    lambda n: n.MaxPool2d(3, 2, 1),
    lambda n: n.AvgPool2d((2, 2)),
    lambda n: n.AdaptiveAvgPool2d((1, 1)),
    lambda n: n.Dropout(0.3),
    lambda n: n.Flatten(0, 2),
    lambda n: n.Identity(),
    lambda n: n.ModuleList([n.ReLU(), n.ReLU(), n.Linear(2, 3), n.ReLU()]),
    lambda n: n.ModuleList(),
    lambda n: n.Sequential(),
])
def test_layer_repr_equals_torch(build):
    assert repr(build(nn)) == repr(build(torch.nn))


# ---------------------------------------------------------------------- containers

def test_sequential_indexing_slicing_and_editing():
    a, b, c = nn.ReLU(), nn.Identity(), nn.Flatten()
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential) and list(tail._modules) == ["1", "2"] and list(tail) == [b, c]
    seq[1] = d = nn.Dropout()
    assert seq[1] is d
    del seq[0]
    assert list(seq._modules) == ["0", "1"] and list(seq) == [d, c]
    assert seq.append(a) is seq and seq[2] is a
    with pytest.raises(IndexError, match="Sequential: index 3 is out of range for length 3"):
        seq[3]


def test_sequential_from_ordered_dict_keeps_names_and_runs_in_order():
    seq = nn.Sequential(collections.OrderedDict([("conv", nn.Conv1d(1, 2, 1)), ("act", nn.ReLU())]))
    assert names(seq.named_children()) == ["conv", "act"] and seq.conv is seq[0]
    seq.conv.weight.array[...] = -1
    seq.conv.bias.array[...] = 0
    out = seq(tinyres.ones(1, 1, 3))        # conv gives -1 everywhere, ReLU makes it 0
    assert not out.numpy().any()


def test_module_list():
    a, b, c = nn.Linear(1, 1), nn.Linear(1, 2), nn.Linear(2, 2)
    ml = nn.ModuleList([a])
    assert ml.append(b) is ml
    ml.extend([c])
    ml.insert(0, c)
    assert list(ml) == [c, a, b, c] and len(ml) == 4 and ml[-2] is b
    assert isinstance(ml[1:3], nn.ModuleList) and list(ml[1:3]) == [a, b]
    ml += [nn.ReLU()]
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2", "3"] and ml[0] is a
    assert names(ml.named_parameters())[:2] == ["0.weight", "0.bias"]
    with pytest.raises(NotImplementedError):
        ml(tinyres.ones(1))


def test_module_dict():
    md = nn.ModuleDict({"b": nn.ReLU()})
    md["a"] = lin = nn.Linear(1, 1)
    md.update([("c", nn.Identity())])
    assert list(md) == list(md.keys()) == ["b", "a", "c"] and len(md) == 3 and "a" in md
    assert md["a"] is lin and list(md.values())[1] is lin and dict(md.items())["a"] is lin
    assert names(md.named_parameters()) == ["a.weight", "a.bias"]
    assert md.pop("a") is lin and "a" not in md
    del md["b"]
    md.clear()
    assert len(md) == 0


# ---------------------------------------------------------------------- state_dict

def test_state_dict_values_are_detached_and_share_memory():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict()
    assert isinstance(sd, collections.OrderedDict)
    assert type(sd["weight"]) is tinyres.Tensor and not sd["weight"].requires_grad
    assert sd["weight"].array is lin.weight.array
    assert lin.state_dict(keep_vars=True)["weight"] is lin.weight
    assert list(lin.state_dict(prefix="fc.")) == ["fc.weight", "fc.bias"]


def test_load_state_dict_copies_into_the_same_parameters_and_casts():
    net = make_net("tinyres")
    params = {k: v for k, v in net.state_dict(keep_vars=True).items()}
    src = make_net("tinyres")
    for t in src.parameters():
        t.array[...] = np.random.default_rng(0).standard_normal(t.shape)
    values = {k: v.numpy().astype(np.float64) for k, v in src.state_dict().items()}   # float64 arrays
    values["bn.num_batches_tracked"] = 7                                              # a plain number
    values["conv.weight"] = src.conv.weight                                           # a Tensor
    assert repr(net.load_state_dict(values)) == "<All keys matched successfully>"
    for key, value in net.state_dict(keep_vars=True).items():
        assert value is params[key]
        assert value.dtype == (np.int64 if key.endswith("num_batches_tracked") else np.float32)
        np.testing.assert_allclose(value.numpy(), np.asarray(values[key]), rtol=1e-6)


@needs_torch
def test_load_state_dict_from_torch_numpy_and_back():
    tnet = make_net("torch")
    net = make_net("tinyres")
    net.load_state_dict({k: v.numpy() for k, v in tnet.state_dict().items()})
    for (k, v), (tk, tv) in zip(net.state_dict().items(), tnet.state_dict().items()):
        assert k == tk
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
    torch_again = make_net("torch")
    torch_again.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in net.state_dict().items()})


def _corrupted_state(lib_name):
    sd = make_net(lib_name).state_dict()
    del sd["layers.0.bias"], sd["heads.2.weight"]
    sd["extra.weight"] = sd["scale"]
    sd["layers.2.weight"] = sd["layers.0.weight"]         # (5, 4) where (2, 5) is expected
    sd["conv.weight"] = sd.pop("conv.weight")[:1]         # moved to the end: errors follow the model's order
    return sd


@needs_torch
def test_strict_load_reports_every_problem_in_one_error_like_torch():
    with pytest.raises(RuntimeError) as ours:
        make_net("tinyres").load_state_dict(_corrupted_state("tinyres"))
    with pytest.raises(RuntimeError) as theirs:
        make_net("torch").load_state_dict(_corrupted_state("torch"))
    message = str(ours.value)
    assert message.startswith("Error(s) in loading state_dict for Net:\n\t")
    assert 'Missing key(s) in state_dict: "layers.0.bias", "heads.2.weight". ' in message
    assert 'Unexpected key(s) in state_dict: "extra.weight". ' in message
    assert ("size mismatch for layers.2.weight: copying a param with shape (5, 4) from checkpoint, "
            "the shape in current model is (2, 5).") in message
    assert message.index("size mismatch for conv.weight") < message.index("size mismatch for layers.2.weight")
    torch_message = re.sub(r"torch\.Size\(\[([\d, ]+)\]\)", r"(\1)", str(theirs.value))
    assert message == torch_message


def test_failed_load_changes_nothing():
    net = make_net("tinyres")
    before = {k: v.numpy() for k, v in net.state_dict().items()}
    sd = {k: np.full(v.shape, 5.0) for k, v in net.state_dict().items()}
    sd["layers.2.bias"] = np.zeros(7)
    with pytest.raises(RuntimeError, match="size mismatch for layers.2.bias"):
        net.load_state_dict(sd, strict=False)          # a size mismatch is an error even when not strict
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


@needs_torch
def test_non_strict_load_returns_missing_and_unexpected_keys():
    sd, tsd = _corrupted_state("tinyres"), _corrupted_state("torch")
    for d in (sd, tsd):                                    # leave no size mismatch
        del d["layers.2.weight"], d["conv.weight"]
    result = make_net("tinyres").load_state_dict(sd, strict=False)
    expected = make_net("torch").load_state_dict(tsd, strict=False)
    assert result.missing_keys == ["conv.weight", "layers.0.bias", "layers.2.weight", "heads.2.weight"]
    assert result.missing_keys == expected.missing_keys
    assert result.unexpected_keys == ["extra.weight"] == expected.unexpected_keys
    missing, unexpected = result
    assert missing == result.missing_keys


@needs_torch
def test_batchnorm_checkpoint_without_num_batches_tracked_loads_as_in_torch():
    sd = nn.BatchNorm2d(3).state_dict()
    del sd["num_batches_tracked"]
    torch.nn.BatchNorm2d(3).load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in sd.items()})
    assert repr(nn.BatchNorm2d(3).load_state_dict(sd)) == "<All keys matched successfully>"


def test_load_state_dict_rejects_values_it_cannot_read():
    with pytest.raises(TypeError, match="load_state_dict: the value for 'bias' is a str"):
        nn.Linear(1, 1).load_state_dict({"weight": np.zeros((1, 1)), "bias": "x"})


@needs_torch                              # a block loads a torch model's state_dict
def test_docs_snippets_run_and_print_what_they_say(capsys):
    """docs/modules.md: every ```python block runs, in order, and prints its comments."""
    import pathlib
    text = (pathlib.Path(__file__).parent.parent / "docs" / "modules.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    exec(compile("\n".join(blocks), "docs/modules.md", "exec"), {})
    printed = capsys.readouterr().out
    for line in ["['scale', 'conv.weight', 'bn.weight', 'bn.bias', 'fc.weight', 'fc.bias']",
                 '\tMissing key(s) in state_dict: "1.bias". ', "float64 int64",
                 "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)): expected input with 3 channels"]:
        assert line in printed


# ---------------------------------------------------------------------- devices (through the CuPy double)

def test_to_cuda_moves_everything_and_keeps_the_objects(fake_cupy):
    net = make_net("tinyres")
    params = list(net.parameters())
    net.layers[0].weight.grad = tinyres.ones(5, 4)
    assert net.to("cuda:1") is net and [id(p) for p in net.parameters()] == [id(p) for p in params]
    for t in net.state_dict().values():
        on(t, "cuda:1")
    on(net.layers[0].weight.grad, "cuda:1")
    on(net.cache, "cuda:1")                              # non-persistent buffers move too
    assert net.bn.num_batches_tracked.dtype == np.int64
    net.cuda()
    on(net.conv.weight, "cuda:0")
    net.cpu()
    assert all(on(t, "cpu") is t for t in net.state_dict().values())


def test_load_state_dict_across_devices(fake_cupy):
    src = nn.Linear(3, 2).to("cuda:1")
    dst = nn.Linear(3, 2)
    dst.load_state_dict({k: v.array for k, v in src.state_dict().items()})      # CuPy arrays into a CPU model
    on(dst.weight, "cpu")
    np.testing.assert_array_equal(dst.weight.numpy(), src.weight.numpy())
    gpu = nn.Linear(3, 2).cuda()
    gpu.load_state_dict({k: v.numpy().astype(np.float64) for k, v in dst.state_dict().items()})
    assert on(gpu.weight, "cuda:0").dtype == np.float32
    np.testing.assert_array_equal(gpu.weight.numpy(), dst.weight.numpy())


def test_init_on_the_gpu_draws_the_same_numbers(fake_cupy):
    tinyres.manual_seed(0)
    cpu = init.kaiming_normal_(tinyres.zeros(4, 3))
    tinyres.manual_seed(0)
    gpu = init.kaiming_normal_(tinyres.zeros(4, 3, device="cuda:1"))
    np.testing.assert_array_equal(on(gpu, "cuda:1").numpy(), cpu.numpy())
