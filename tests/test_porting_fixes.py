"""Porting bugs found by swapping the imports of real PyTorch code, each checked against
torch: an optimizer resumed from a .pth (tinyres's or torch's), torch's type promotion
(``result_type``) for + - * / ** over a table of dtypes and operand kinds, the
torchvision datasets' ``data``/``targets`` as their storage, ``Tensor.__format__``, and
the legacy constructors (``torch.Tensor(3, 4)``, ``torch.LongTensor([...])``).
(In-place ops in ONNX export are in test_onnx.py.)"""
import operator

import numpy as np
import pytest
import torch
from PIL import Image

import tinyres
from tinyres import nn
from tinyres.vision import datasets
from cases import OPTIMIZERS
from helpers import compare_second_order_with_torch, compare_with_torch
from test_data_datasets import write_mnist
from test_vision import cifar_root  # noqa: F401  (a fixture: 40 fake CIFAR-10 training images)


# ---------------------------------------------------------------------- optimizer resumed from a .pth

X = np.random.default_rng(0).standard_normal((8, 4))
Y = np.random.default_rng(1).standard_normal((8, 2))


def tiny_net(dtype=tinyres.float32, seed=0):
    tinyres.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).to(dtype)


def train(lib, model, opt, steps):
    x, y = lib.tensor(X), lib.tensor(Y)
    if lib is tinyres:
        x, y = x.to(model[0].weight.dtype), y.to(model[0].weight.dtype)
    for _ in range(steps):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[f"{n}-{kw}" for n, kw in OPTIMIZERS])
def test_resuming_from_a_pth_is_bit_identical_to_training_on(name, kwargs, tmp_path):
    """3 steps, model and optimizer saved to a .pth (torch's format) and loaded into fresh
    ones, 3 more steps: the same parameters as 6 steps without a break, bit for bit."""
    make = getattr(tinyres.optim, name)
    straight = tiny_net()
    train(tinyres, straight, make(straight.parameters(), **kwargs), 6)
    first = tiny_net()
    opt = make(first.parameters(), **kwargs)
    train(tinyres, first, opt, 3)
    tinyres.save({"model": first.state_dict(), "opt": opt.state_dict()}, tmp_path / "c.pth")
    checkpoint = tinyres.load(tmp_path / "c.pth")
    saved = [v for s in checkpoint["opt"]["state"].values() for v in s.values()]
    assert all(isinstance(v, (tinyres.Tensor, int)) for v in saved)       # as torch.load gives them
    assert any(isinstance(v, tinyres.Tensor) for v in saved) == (kwargs.get("momentum", 0) != 0 or name != "SGD")
    resumed = tiny_net(seed=1)
    resumed.load_state_dict(checkpoint["model"])
    opt = make(resumed.parameters(), **kwargs)
    opt.load_state_dict(checkpoint["opt"])
    train(tinyres, resumed, opt, 3)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert all(isinstance(v, (np.ndarray, int, float)) for s in opt.state.values() for v in s.values())


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[f"{n}-{kw}" for n, kw in OPTIMIZERS])
def test_a_state_dict_torch_saved_continues_as_torch_continues(name, kwargs, tmp_path):
    """torch trains 3 steps and saves model and optimizer; tinyres loads both into its own
    and continues 3 steps, as torch continues (float64)."""
    ours = tiny_net(tinyres.float64)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2)).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    topt = getattr(torch.optim, name)(theirs.parameters(), foreach=False, **kwargs)
    train(torch, theirs, topt, 3)
    torch.save({"model": theirs.state_dict(), "opt": topt.state_dict()}, tmp_path / "torch.pth")
    checkpoint = tinyres.load(tmp_path / "torch.pth")
    ours.load_state_dict(checkpoint["model"])
    opt = getattr(tinyres.optim, name)(ours.parameters(), **kwargs)
    opt.load_state_dict(checkpoint["opt"])
    train(torch, theirs, topt, 3)
    train(tinyres, ours, opt, 3)
    for a, b in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)
    steps = [s["step"] for s in opt.state.values() if "step" in s]
    assert all(step == 6 and isinstance(step, int) for step in steps)


# ---------------------------------------------------------------------- type promotion

DTYPES = ["bool", "uint8", "int32", "int64", "float32", "float64"]
NUMBERS = [True, 3, -1, 2.5]


def operands():
    """(label, value): each dtype as a dimensioned and as a 0-d tensor (NumPy here), and Python numbers."""
    out = []
    for d in DTYPES:
        out.append((f"{d}[3]", np.array([True, False, True] if d == "bool" else [1, 2, 3], dtype=d)))
        out.append((f"{d}[]", np.array(True if d == "bool" else 2, dtype=d)))
    return out + [(repr(v), v) for v in NUMBERS]


def as_lib(lib, value):
    if not isinstance(value, np.ndarray):
        return value
    return torch.from_numpy(value.copy()) if lib is torch else tinyres.tensor(value)


OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow}


@pytest.mark.parametrize("op", OPS)
def test_binary_ops_promote_and_compute_as_torch(op):
    """Every pair of operands with a tensor among them: the result's dtype and values, or
    the exception type, are torch's."""
    fn, wrong, count = OPS[op], [], 0
    for left, a in operands():
        for right, b in operands():
            if not (isinstance(a, np.ndarray) or isinstance(b, np.ndarray)):
                continue
            count += 1
            try:
                ref, ref_error = fn(as_lib(torch, a), as_lib(torch, b)), None
            except Exception as e:      # noqa: BLE001  (which one torch raises is the point)
                ref_error = type(e)
            try:
                got, error = fn(as_lib(tinyres, a), as_lib(tinyres, b)), None
            except Exception as e:      # noqa: BLE001
                error = type(e)
            case = f"{left} {op} {right}"
            if ref_error or error:
                if ref_error is not error:
                    wrong.append(f"{case}: torch raises {ref_error}, tinyres {error}")
                continue
            dtype = str(ref.dtype).replace("torch.", "")
            if str(got.dtype) != dtype or got.shape != tuple(ref.shape):
                wrong.append(f"{case}: torch {dtype} {tuple(ref.shape)}, tinyres {got.dtype} {got.shape}")
            elif dtype.startswith("float"):
                rtol = 1e-6 if dtype == "float32" else 1e-13
                if not np.allclose(got.numpy(), ref.numpy(), rtol=rtol, atol=0, equal_nan=True):
                    wrong.append(f"{case}: torch {ref.numpy()}, tinyres {got.numpy()}")
            elif not np.array_equal(got.numpy(), ref.numpy()):
                wrong.append(f"{case}: torch {ref.numpy()}, tinyres {got.numpy()}")
    assert count == 240 and not wrong, "\n".join(wrong)


def test_the_cases_that_were_wrong():
    m = tinyres.tensor([True, False])
    assert (m + 1).dtype == np.int64 and (m + 1).tolist() == [2, 1]
    assert (m * 3).tolist() == [3, 0] and (3 * m).tolist() == [3, 0] and (3 * m).dtype == np.int64
    x32, zero64 = tinyres.ones(2), tinyres.tensor(1.0, dtype=tinyres.float64)
    assert (x32 + zero64).dtype == np.float32 and (zero64 + x32).dtype == np.float32
    assert (2 ** tinyres.tensor([1, 2, 3])).dtype == np.int64 and (2 ** tinyres.tensor([1, 2, 3])).tolist() == [2, 4, 8]
    assert (tinyres.tensor([1, 2], dtype=tinyres.int32) + 0.5).dtype == np.float32
    tinyres.set_default_dtype(tinyres.float64)
    try:
        assert (tinyres.tensor([1, 2], dtype=tinyres.int32) + 0.5).dtype == np.float64
        assert (tinyres.ones(2, dtype=tinyres.float32) + 0.5).dtype == np.float32
    finally:
        tinyres.set_default_dtype(tinyres.float32)
    ours = tinyres.ops.result_type(tinyres.ones(2, dtype=tinyres.int32), tinyres.tensor(1.0, dtype=tinyres.float64))
    assert ours == np.float64 and torch.result_type(torch.ones(2, dtype=torch.int32),
                                                    torch.tensor(1.0, dtype=torch.float64)) == torch.float64


def test_errors_of_bool_subtraction_and_negative_integer_powers_are_torchs():
    with pytest.raises(RuntimeError, match="with two bool tensors is not supported"):
        tinyres.tensor([True]) - tinyres.tensor([False])
    with pytest.raises(RuntimeError, match="with a bool tensor is not supported. If you are trying to invert a mask"):
        1 - tinyres.tensor([True])
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
        tinyres.tensor([2, 3]) ** -1
    base = tinyres.tensor([-1, 1, 2, -1], dtype=tinyres.int32)
    exponent = tinyres.tensor([-3, -2, -1, -2])
    ref = torch.tensor([-1, 1, 2, -1], dtype=torch.int32) ** torch.tensor([-3, -2, -1, -2])
    assert (base ** exponent).tolist() == ref.tolist() and str((base ** exponent).dtype) == "int64"


def test_a_tensor_exponent_is_differentiable_as_torch():
    """``a ** b`` for tensors (also a 0 base and a 0 exponent: torch's gradients there) and
    ``2 ** t``, first and second derivatives."""
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 2.0, (3, 4)), rng.standard_normal(4)
    compare_with_torch(lambda x, y: x ** y, lambda x, y: x ** y, [a, b])
    compare_second_order_with_torch(lambda x, y: x ** y, lambda x, y: x ** y, [a, b])
    edges = np.array([0.0, 0.0, 1.5, 2.0]), np.array([0.0, 2.0, 0.0, -1.0])
    compare_with_torch(lambda x, y: x ** y, lambda x, y: x ** y, list(edges))
    compare_with_torch(lambda x: 2 ** x, lambda x: 2 ** x, [b])
    compare_second_order_with_torch(lambda x: 2.5 ** x, lambda x: 2.5 ** x, [b])


def test_same_dtype_tensors_skip_the_promotion():
    a, b = tinyres.ones(3), tinyres.ones(3)
    assert tinyres.ops._operands(a, b, "add") == (a, b)


# ---------------------------------------------------------------------- torchvision datasets

def test_cifar_data_and_targets_are_the_storage(cifar_root):
    root, content = cifar_root
    ds = datasets.CIFAR10(root, train=True)
    ds.data, ds.targets = ds.data[:10], [7] * 10            # a subset, with new labels
    assert len(ds) == 10 and ds[0][1] == 7 and ds[9][1] == 7
    with pytest.raises(IndexError):
        ds[10]
    ds.targets[3] = 2                                     # a noisy label, in place
    assert ds[3][1] == 2
    ds.data = ds.data[::-1].copy()
    image = content["data_batch_2"][0][1]                 # the 10th of the train set, now the first
    np.testing.assert_array_equal(np.asarray(ds[0][0]), image.reshape(3, 32, 32).transpose(1, 2, 0))


def test_mnist_data_and_targets_are_the_storage(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_mnist(tmp_path / "MNIST" / "raw", False, {"train": (images, np.arange(5)), "t10k": (images, np.arange(5))})
    ds = datasets.MNIST(str(tmp_path), train=True)
    ds.data, ds.targets = ds.data[1:3], tinyres.tensor([9, 8])
    assert len(ds) == 2 and [ds[i][1] for i in range(2)] == [9, 8]
    image = ds[1][0]
    assert isinstance(image, Image.Image) and image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), images[2])


# ---------------------------------------------------------------------- __format__

FORMATS = [("tensor(1.23456)", ".3f"), ("tensor(2.0)", ".2f"), ("tensor(3)", "5d"), ("tensor(3)", ".2f"),
           ("tensor(True)", ""), ("tensor(2.5)", ""), ("tensor(2.0, dtype={lib}.float64)", "10.4e"),
           ("tensor(1.5, requires_grad=True)", ".2f"), ("tensor([1.23456])", ".3f"), ("tensor([1., 2.])", ""),
           ("zeros(2, 2)", ">5"), ("tensor(3.5)", "d"), ("nn.Parameter({lib}.tensor(1.5))", ".2f"),
           ("tensor([1, 2])", "")]


@pytest.mark.parametrize("expr, spec", FORMATS)
def test_format_as_torch(expr, spec):
    def formatted(lib, name):
        value = eval(f"{name}.{expr.format(lib=name)}", {name: lib, "nn": lib.nn})
        try:
            return format(value, spec), None
        except Exception as e:      # noqa: BLE001
            return None, (type(e), str(e))
    (ours, our_error), (theirs, their_error) = formatted(tinyres, "tinyres"), formatted(torch, "torch")
    assert our_error == their_error
    value = eval(f"tinyres.{expr.format(lib='tinyres')}", {"tinyres": tinyres, "nn": nn})
    if our_error is None:       # a 0-d Tensor formats as its item; any other, with no spec, as str()
        assert ours == (theirs if value.ndim == 0 and type(value) is tinyres.Tensor else str(value))
    assert f"{tinyres.tensor(0.123456):.3f}" == "0.123" and "{:.2f}".format(tinyres.tensor(2.0)) == "2.00"


# ---------------------------------------------------------------------- legacy constructors

LEGACY = ["Tensor()", "Tensor(3, 4)", "Tensor(4)", "Tensor([1, 2])", "Tensor((1, 2))", "Tensor([[1, 2], [3, 4]])",
          "Tensor([])", "Tensor([True, False])", "Tensor(0)", "Tensor(2, 0, 3)", "Tensor(3, device='cpu')",
          "Tensor({lib}.Size([2, 3]))", "LongTensor({lib}.Size([2]))",
          "Tensor(2.5)", "Tensor(True)", "Tensor(-1)", "Tensor(2, 2.0)", "Tensor([1, 2], 3)",
          "LongTensor([1.7, -2.2])", "LongTensor(3)", "LongTensor()", "LongTensor((2, 3))", "FloatTensor([1, 2])",
          "FloatTensor(2, 3)", "DoubleTensor(2, 3)", "DoubleTensor([1.5])", "IntTensor([1, 2])", "IntTensor(2)",
          "BoolTensor([1, 0])", "BoolTensor(2)", "ByteTensor([1, 255])", "ByteTensor([-1])", "ByteTensor(2, 2)",
          "HalfTensor([1])", "ShortTensor([3])", "CharTensor([-3])",
          "LongTensor({lib}.tensor([1, 2]))", "LongTensor({lib}.tensor([1., 2.]))", "FloatTensor(2.5)"]


@pytest.mark.parametrize("expr", LEGACY)
def test_legacy_constructors_as_torch(expr):
    def make(lib, name):
        try:
            return eval(f"{name}.{expr.format(lib=name)}", {name: lib}), None
        except Exception as e:      # noqa: BLE001
            return None, type(e)
    (ours, our_error), (theirs, their_error) = make(tinyres, "tinyres"), make(torch, "torch")
    assert our_error is their_error
    if theirs is None:
        return
    assert isinstance(ours, tinyres.Tensor) and type(ours) is tinyres.Tensor
    assert ours.shape == tuple(theirs.shape) and str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    assert not ours.requires_grad
    if ("[" in expr or "((" in expr) and "Size" not in expr:    # data: the values (torch leaves sizes uninitialised)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_legacy_constructors_with_parameters_dtypes_and_isinstance():
    weight = nn.Parameter(tinyres.Tensor(3, 4))
    assert weight.shape == (3, 4) and weight.dtype == np.float32 and weight.requires_grad
    nn.init.kaiming_uniform_(weight)
    assert weight.abs().sum().item() > 0
    tinyres.set_default_dtype(tinyres.float64)
    try:
        assert tinyres.Tensor([1, 2]).dtype == np.float64 and tinyres.FloatTensor([1]).dtype == np.float32
    finally:
        tinyres.set_default_dtype(tinyres.float32)
    assert isinstance(tinyres.zeros(2).long(), tinyres.LongTensor)
    assert not isinstance(tinyres.zeros(2), tinyres.LongTensor)
    assert isinstance(tinyres.zeros(2), tinyres.FloatTensor) and isinstance(tinyres.zeros(2), tinyres.Tensor)
    t = tinyres.tensor([1, 2])
    assert tinyres.LongTensor(t).array is t.array              # shared, as torch's
    data = [1.0, 2.0]
    copied = tinyres.Tensor(data)
    data[0] = 5.0
    assert copied.tolist() == [1.0, 2.0]


def test_internal_construction_still_wraps_arrays():
    """``Tensor(array)`` (how the library makes every op's output) shares the array and
    keeps its dtype; a NumPy scalar is a 0-d array of its dtype."""
    a = np.arange(3)
    t = tinyres.Tensor(a, requires_grad=False)
    assert t.array is a and t.dtype == np.int64
    s = tinyres.Tensor(np.float64(2.5))
    assert s.shape == () and s.dtype == np.float64 and s.item() == 2.5
    g = tinyres.Tensor(np.ones(2, np.float32), requires_grad=True)
    assert g.requires_grad and g.is_leaf
    with pytest.raises(RuntimeError, match="negative dimension"):
        tinyres.Tensor(-2)
