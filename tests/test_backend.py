"""The array backend: devices, ``get_array_module``, life without CuPy, and -- through a
small CuPy test double -- the path a tensor takes to a GPU and back.

The double (``fake_cupy``, tests/cupy_double.py) is NumPy underneath, behind a type NumPy
cannot compute with.  It is honest about what it proves: that tinyres asks the backend for
every array it makes on a "cuda" device, never mixes host and device arrays in one
operation, never hands device data to NumPy, keeps results on the device through forward
and backward, copies with ``.get()`` / ``cupy.array`` under ``cuda.Device(n)``, and refuses
to mix devices.  It proves nothing about CUDA kernels.
"""
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import tinyres
from tinyres import backend
from helpers import gradcheck  # the suite's tight tolerances
from helpers import run_doc
from cases import OP_CASES, make_inputs, run_case
from cupy_double import make_fake_cupy, on


# ---------------------------------------------------------------------- devices

@pytest.mark.parametrize("spec, kind, index, text", [
    ("cpu", "cpu", None, "cpu"),
    ("cuda", "cuda", 0, "cuda:0"),
    ("cuda:1", "cuda", 1, "cuda:1"),
    (" cuda:12 ", "cuda", 12, "cuda:12"),
])
def test_device_parsing(spec, kind, index, text):
    d = tinyres.device(spec)
    assert (d.type, d.index, str(d)) == (kind, index, text)
    assert repr(d) == f"device('{text}')"
    assert d == text and d == tinyres.Device(d) and hash(d) == hash(tinyres.Device(text))


@pytest.mark.parametrize("spec", ["gpu", "CUDA", "cuda:-1", "cuda:", "cpu:0", "cuda:one", ""])
def test_unknown_device_strings_raise_value_error_naming_them(spec):
    with pytest.raises(ValueError, match=f"device: expected 'cpu', 'cuda' or 'cuda:N', got '{spec}'"):
        tinyres.device(spec)
    with pytest.raises(ValueError, match=re.escape(repr(spec))):
        tinyres.zeros(2, device=spec)


def test_device_of_the_wrong_type_raises_type_error():
    with pytest.raises(TypeError, match="device: expected a string .* got 0"):
        tinyres.device(0)


def test_device_never_equals_an_unparsable_string():
    assert tinyres.device("cpu") != "gpu"


def test_get_array_module_on_cpu():
    assert backend.get_array_module(np.zeros(2)) is np
    assert backend.get_array_module(tinyres.zeros(2)) is np
    assert backend.get_array_module(3.0) is np


def test_only_the_backend_imports_cupy():
    package = pathlib.Path(tinyres.__file__).parent
    pattern = re.compile(r"^\s*(import cupy|from cupy|import cupyx|from cupyx)|import_module\(\"cupy", re.M)
    importers = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                       if pattern.search(p.read_text()))
    assert importers == ["core/backend.py"]


# ---------------------------------------------------------------------- without CuPy

def test_import_works_without_cupy_and_cuda_names_the_gpu_extra():
    script = """
import sys
sys.modules['cupy'] = None          # makes `import cupy` fail, even where CuPy is installed
import tinyres
assert not tinyres.cuda.is_available() and tinyres.cuda.device_count() == 0
x = tinyres.ones(2) * 3             # the CPU works
for call in (lambda: tinyres.zeros(2, device='cuda'), lambda: x.cuda(), lambda: x.to('cuda:1')):
    try:
        call()
    except RuntimeError as e:
        assert "pip install 'tinyres[gpu]'" in str(e), e
    else:
        raise AssertionError('no error')
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_error", ImportError("No module named 'cupy'"))


def test_asking_for_cuda_without_cupy_raises(no_cupy):
    with pytest.raises(RuntimeError, match=r"needs CuPy.*No module named 'cupy'.*tinyres\[gpu\]"):
        tinyres.randn(2, device="cuda")
    assert not tinyres.cuda.is_available()


# ---------------------------------------------------------------------- the CuPy double

# The double is tests/cupy_double.py; conftest.py installs it as the ``fake_cupy`` fixture.


def test_the_double_makes_cuda_available(fake_cupy):
    assert tinyres.cuda.is_available() and tinyres.cuda.device_count() == 2


def test_get_array_module_finds_cupy_arrays_and_tensors(fake_cupy):
    g = tinyres.ones(2).cuda()
    assert backend.get_array_module(g) is fake_cupy
    assert backend.get_array_module(g.array) is fake_cupy     # not fooled by cupy's .data pointer
    assert backend.get_array_module(np.ones(2)) is np


def test_to_cuda_and_back(fake_cupy):
    x = tinyres.randn(2, 3)
    g = on(x.to("cuda"), "cuda:0")
    assert g.is_cuda and g.to("cuda:0") is g
    g1 = on(g.cuda(1), "cuda:1")                              # GPU to GPU
    back = on(g1.cpu(), "cpu")
    assert type(back.array) is np.ndarray and type(g1.numpy()) is np.ndarray
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    assert "device='cuda:1'" in repr(g1)


def test_factories_on_cuda(fake_cupy):
    on(tinyres.zeros(2, 3, device="cuda:1"), "cuda:1")
    on(tinyres.tensor([1.0, 2.0], device="cuda"), "cuda:0")
    on(tinyres.arange(4, device="cuda"), "cuda:0")
    on(tinyres.ones_like(tinyres.zeros(2, device="cuda:1")), "cuda:1")
    tinyres.manual_seed(5)
    on_gpu = on(tinyres.randn(3, device="cuda"), "cuda:0")
    tinyres.manual_seed(5)
    np.testing.assert_array_equal(on_gpu.numpy(), tinyres.randn(3).numpy())    # the same numbers
    assert fake_cupy.random.seeds == [5, 5]


def test_manual_seed_returns_the_default_generator_as_torch():
    """``g = torch.manual_seed(0)`` is the generator the random ops then draw from: the
    stream of ``numpy.random.default_rng(seed)``, as before."""
    g = tinyres.manual_seed(7)
    assert isinstance(g, tinyres.Generator) and g is backend.default_generator() and g.initial_seed() == 7
    np.testing.assert_array_equal(tinyres.rand(4, dtype=tinyres.float64).numpy(), np.random.default_rng(7).random(4))
    assert tinyres.initial_seed() == 7


@pytest.mark.parametrize("device", ["cuda:0", "cuda:1"])
@pytest.mark.parametrize("case", OP_CASES, ids=[c.name for c in OP_CASES])
def test_every_op_runs_forward_and_backward_on_the_gpu(fake_cupy, case, device):
    """The op table of test_ops, once on the CPU and once on a GPU: same numbers, and the
    output and every gradient stay on the GPU."""
    arrays = make_inputs(case.inputs, np.float32)
    cpu = [tinyres.tensor(a, requires_grad=True) for a in arrays]
    gpu = [tinyres.tensor(a, device=device, requires_grad=True) for a in arrays]
    y_cpu, y_gpu = run_case(case, tinyres)(*cpu), on(run_case(case, tinyres)(*gpu), device)
    upstream = np.random.default_rng(0).standard_normal(y_cpu.shape).astype(np.float32)
    y_cpu.backward(tinyres.tensor(upstream))
    y_gpu.backward(tinyres.tensor(upstream, device=device))
    np.testing.assert_array_equal(y_gpu.numpy(), y_cpu.numpy())
    for c, g in zip(cpu, gpu):
        np.testing.assert_array_equal(on(g.grad, device).numpy(), c.grad.numpy())


def test_inplace_writes_into_a_gpu_tensor(fake_cupy):
    g = tinyres.zeros(2, 2, device="cuda:1")
    g[0] = [1.0, 2.0]
    g[1] = tinyres.tensor([3.0, 4.0])           # a CPU value is copied over, as in torch
    g += 1
    g.copy_(g * 2)
    on(g, "cuda:1")
    np.testing.assert_array_equal(g.numpy(), [[4.0, 6.0], [8.0, 10.0]])


def test_gradient_flows_back_across_devices(fake_cupy):
    x = tinyres.tensor([1.0, 2.0], requires_grad=True)
    (x.to("cuda") * x.to("cuda")).sum().backward()
    np.testing.assert_array_equal(on(x.grad, "cpu").numpy(), [2.0, 4.0])


def test_gradcheck_on_the_gpu(fake_cupy):
    x = tinyres.randn(3, 2, dtype="float64", device="cuda", requires_grad=True)
    assert gradcheck(lambda t: (t * t.exp()).sum(1), [x])


def test_indexing_a_gpu_tensor_with_a_cpu_index(fake_cupy):
    g = tinyres.arange(6, device="cuda").reshape(2, 3)
    on(g[tinyres.tensor([1, 0])], "cuda:0")
    with pytest.raises(RuntimeError, match=r"index: expected indices on cpu or on cpu.*got indices on cuda:0"):
        tinyres.zeros(3)[tinyres.tensor([0], device="cuda")]


MIXED = [
    (lambda c, g: c + g, r"Add: expected all tensors on one device, got cpu, cuda:0"),
    (lambda c, g: g * c, r"Mul: .*got cuda:0, cpu"),
    (lambda c, g: c @ g, r"MatMul: .*cpu, cuda:0"),
    (lambda c, g: tinyres.cat([c, g]), r"Cat: .*cpu, cuda:0"),
    (lambda c, g: tinyres.maximum(g, c), r"Maximum: .*cuda:0, cpu"),
    (lambda c, g: tinyres.where(c > 0, g, g), r"Where: .*cpu, cuda:0, cuda:0"),
    (lambda c, g: g + g.cuda(1), r"Add: .*cuda:0, cuda:1"),
    (lambda c, g: tinyres.logical_and(c, g), r"logical_and: expected all tensors on one device, got cpu, cuda:0"),
    (lambda c, g: tinyres.bitwise_xor(g.bool(), c.bool()), r"bitwise_xor: .*cuda:0, cpu"),
]


@pytest.mark.parametrize("call, message", MIXED, ids=[f"mixed{i}" for i in range(len(MIXED))])
def test_mixing_devices_names_both(fake_cupy, call, message):
    c, g = tinyres.ones(2, 2), tinyres.ones(2, 2, device="cuda")
    with pytest.raises(RuntimeError, match=message):
        call(c, g)


def test_backward_with_a_gradient_on_another_device(fake_cupy):
    y = tinyres.ones(2, device="cuda", requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"backward: expected the gradient on cuda:0 .*got it on cpu"):
        y.backward(tinyres.ones(2))


def test_cupy_without_a_gpu_raises(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", make_fake_cupy(device_count=0))
    assert not tinyres.cuda.is_available()
    with pytest.raises(RuntimeError, match="CuPy is installed but no CUDA GPU is visible"):
        tinyres.ones(1).cuda()


def test_docs_backend_md_runs_and_prints_what_it_says(capsys):
    run_doc("backend.md")
    printed = capsys.readouterr().out
    assert "device: expected 'cpu', 'cuda' or 'cuda:N', got 'gpu'" in printed
    assert "no GPU here" in printed


def test_docs_backend_md_runs_with_a_gpu(fake_cupy):
    run_doc("backend.md")
