"""Shared test tools: non-contiguous copies, running one computation in tinyres and in
PyTorch on identical inputs to compare outputs and gradients, image folders on disk, the
docs' code blocks and a small Trainer: what several test modules need lives here, not in
one of them (the shared case tables are in cases.py).

torch is imported if it is there: without it this module still imports, so the tests
that never look at torch are collected and run, and ``compare_with_torch`` skips.
"""
import numpy as np
import pytest

import tinyres
from tinyres import nn, optim
from tinyres.data import BundledMNIST, DataLoader, transforms
from tinyres.train import Trainer

try:
    import torch
    import torch.nn as tnn
    import torch.nn.functional as TF
except ImportError:
    torch = tnn = TF = None

# for the tests (or parametrized cases) that use torch themselves, not only through compare_with_torch
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed: the parity check against torch "
                                                       "is skipped (CI installs it; pip install -e '.[test]')")

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}


def noncontiguous(a):
    """The same values as ``a``, in a strided (non-contiguous) view."""
    a = np.asarray(a)
    if a.ndim == 0:
        return a
    big = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), dtype=a.dtype)
    big[..., ::2] = a
    view = big[..., ::2]
    assert not view.flags.c_contiguous or a.shape[-1] <= 1
    return view


def randn(*shape, dtype=np.float64, seed=0, low=None):
    """Normal random values; with ``low``, magnitudes at least ``low`` (away from kinks at 0)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if low is not None:
        x = np.sign(x + (x == 0)) * (np.abs(x) + low)
    return x.astype(dtype)


def compare_with_torch(tiny_fn, torch_fn, arrays, rtol=None, atol=None, grad=True, seed=1,
                       contiguous=True):
    """Run ``tiny_fn`` and ``torch_fn`` on tensors made from the same NumPy ``arrays``;
    check the outputs, then (with ``grad``) backward a random upstream gradient through both
    and check every input gradient.  Integer arrays are passed without grad.  Skips the
    test when torch is not installed."""
    if torch is None:
        pytest.skip("PyTorch is not installed (pip install -e '.[test]')")
    dtype = next((a.dtype for a in arrays if np.asarray(a).dtype.kind == "f"), np.dtype(np.float64))
    tol = dict(TOL[dtype.type])
    if rtol is not None:
        tol["rtol"] = rtol
    if atol is not None:
        tol["atol"] = atol
    arrays = [np.asarray(a) for a in arrays]
    if not contiguous:
        arrays = [noncontiguous(a) for a in arrays]
    floating = [a.dtype.kind == "f" and grad for a in arrays]
    # Tensor() wraps the arrays without copying, so a strided layout reaches the op as it is
    tx = [tinyres.Tensor(a, requires_grad=f) for a, f in zip(arrays, floating)]
    px = [torch.tensor(np.array(a, order="C"), requires_grad=f) for a, f in zip(arrays, floating)]   # 0-d stays 0-d
    ty, py = tiny_fn(*tx), torch_fn(*px)
    assert ty.shape == tuple(py.shape), (ty.shape, tuple(py.shape))
    assert ty.dtype == np.dtype(str(py.dtype).replace("torch.", "")), (ty.dtype, py.dtype)
    np.testing.assert_allclose(ty.numpy(), py.detach().numpy(), **tol)
    if not grad or not any(floating):
        return ty
    g = np.random.default_rng(seed).standard_normal(ty.shape).astype(ty.dtype)
    ty.backward(tinyres.tensor(g))
    py.backward(torch.tensor(g))
    for i, (t, p, f) in enumerate(zip(tx, px, floating)):
        if not f:
            continue
        assert t.grad is not None, f"input {i}: no gradient"
        assert t.grad.dtype == t.dtype, f"input {i}: gradient is {t.grad.dtype}, input {t.dtype}"
        np.testing.assert_allclose(t.grad.numpy(), p.grad.numpy(), **tol,
                                   err_msg=f"gradient of input {i}")
    return ty


def compare_second_order_with_torch(tiny_fn, torch_fn, arrays, rtol=1e-10, atol=1e-12, seed=2):
    """Second derivatives against PyTorch, float64: with random ``v`` (like the output) and
    ``u`` (like the inputs), g = grad(y, x, v, create_graph=True) and then grad(sum(g * u), x)
    in both libraries; also checks the first-order g.  Integer arrays are passed without grad."""
    if torch is None:
        pytest.skip("PyTorch is not installed (pip install -e '.[test]')")
    arrays = [np.asarray(a) for a in arrays]
    floating = [a.dtype.kind == "f" for a in arrays]
    tx = [tinyres.Tensor(a.copy(), requires_grad=f) for a, f in zip(arrays, floating)]
    px = [torch.tensor(a.copy(), requires_grad=f) for a, f in zip(arrays, floating)]
    tin = [t for t, f in zip(tx, floating) if f]
    pin = [p for p, f in zip(px, floating) if f]
    ty, py = tiny_fn(*tx), torch_fn(*px)
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(ty.shape)
    tg = tinyres.autograd.grad(ty, tin, tinyres.tensor(v, requires_grad=True), create_graph=True, allow_unused=True)
    pg = torch.autograd.grad(py, pin, torch.tensor(v, requires_grad=True), create_graph=True, allow_unused=True)
    us = [rng.standard_normal(t.shape) for t in tin]
    for i, (a, b) in enumerate(zip(tg, pg)):
        assert (a is None) == (b is None) or (b is not None and not b.requires_grad), f"input {i}"
        if a is not None:
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(force=True), rtol=rtol, atol=atol,
                                       err_msg=f"first-order gradient of input {i}")
    # v requires grad, so each g has a graph (through v at least) in both libraries
    t_terms = [(g * tinyres.tensor(u)).sum() for g, u in zip(tg, us) if g is not None]
    p_terms = [(g * torch.tensor(u)).sum() for g, u in zip(pg, us) if g is not None]
    th = tinyres.autograd.grad(sum(t_terms[1:], t_terms[0]), tin, allow_unused=True)
    ph = torch.autograd.grad(sum(p_terms[1:], p_terms[0]), pin, allow_unused=True)
    for i, (a, b) in enumerate(zip(th, ph)):
        a = np.zeros(tin[i].shape) if a is None else a.numpy()
        b = np.zeros(tin[i].shape) if b is None else b.numpy(force=True)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"second derivative, input {i}")


def gradgradcheck(fn, inputs, **options):
    """``tinyres.autograd.gradgradcheck`` with the suite's tight tolerances (see ``gradcheck``)."""
    options.setdefault("atol", 1e-7)
    options.setdefault("rtol", 1e-5)
    return tinyres.autograd.gradgradcheck(fn, inputs, **options)


def write_images(root, per_class, size=(6, 5), mode="RGB", ext=".png", seed=0):
    """``per_class`` {class name: count} images of ``size`` (H, W); returns the arrays written."""
    from PIL import Image        # here, not at the top: only the image-folder tests need Pillow
    rng = np.random.default_rng(seed)
    written = {}
    for name, count in per_class.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = size + ((3,) if mode == "RGB" else ())
            array = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(array, mode).save(root / name / f"{i:03d}{ext}")
            written[(name, i)] = array
    return written


def run_doc(name):
    """Run every ```python block of docs/<name>, in order, in one namespace."""
    import pathlib
    import re
    text = (pathlib.Path(__file__).parent.parent / "docs" / name).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    exec(compile("\n".join(blocks), f"docs/{name}", "exec"), {})


def gradcheck(fn, inputs, **options):
    """``tinyres.autograd.gradcheck`` with the suite's tolerances: tight enough that a backward
    off by 0.1% fails (tests/test_mutations.py), where gradcheck's defaults are torch's
    (atol 1e-5, rtol 1e-3) and would let it pass."""
    options.setdefault("atol", 1e-8)
    options.setdefault("rtol", 1e-6)
    return tinyres.autograd.gradcheck(fn, inputs, **options)


# ---------------------------------------------------------------------- a small training run (test_train, test_gpu)

def small_data(n=48):
    data = BundledMNIST(train=True)
    data.data, data.targets = data.data[:n], data.targets[:n]
    return data


def small_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))


def make_trainer(out_dir, epochs, seed=3):
    tinyres.manual_seed(seed)
    model = small_model()
    generator = np.random.default_rng(seed)
    augment = transforms.Compose([transforms.RandomCrop(28, padding=2, generator=generator),
                                  transforms.Normalize(transforms.MNIST_MEAN, transforms.MNIST_STD)])
    train = DataLoader(small_data(), batch_size=16, shuffle=True, seed=seed, transform=augment)
    test = DataLoader(small_data(32), batch_size=16)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 2], gamma=0.5)
    config = {"model": "small", "dataset": "bundled", "num_classes": 10}
    return Trainer(model, opt, train, test, sched, epochs=epochs, out_dir=out_dir, config=config,
                   augment_generator=generator, seed=seed, progress=False, log=lambda *_: None)


def compare_grad_chain_with_torch(tiny_fn, torch_fn, arrays, order=3, rtol=1e-10, atol=1e-12, seed=3):
    """Derivatives through the upstream gradients, to ``order``, against PyTorch in float64:
    g1 = grad(f(x), x, v1, create_graph=True), g2 = grad(g1, v1, v2, create_graph=True),
    g3 = grad(g2, v2, v3), ...  Each step differentiates the backward of the step before
    with respect to its upstream gradient, so an op whose gradient ops come in a pair (a
    pool and its adjoint) has both of its ops and their backwards checked."""
    if torch is None:
        pytest.skip("PyTorch is not installed (pip install -e '.[test]')")
    rng = np.random.default_rng(seed)
    t_in = [tinyres.Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    p_in = [torch.tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    t_out, p_out = [tiny_fn(*t_in)], [torch_fn(*p_in)]
    for k in range(order):
        vs = [rng.standard_normal(t.shape) for t in t_out]
        t_v = [tinyres.tensor(v, requires_grad=True) for v in vs]
        p_v = [torch.tensor(v, requires_grad=True) for v in vs]
        last = k == order - 1
        t_g = tinyres.autograd.grad(t_out, t_in, t_v, create_graph=not last, allow_unused=True)
        p_g = torch.autograd.grad(p_out, p_in, p_v, create_graph=not last, allow_unused=True)
        for i, (a, b) in enumerate(zip(t_g, p_g)):
            assert (a is None) == (b is None), f"order {k + 1}, input {i}: tinyres gives {a}, torch {b}"
            if a is not None:
                np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=rtol, atol=atol,
                                           err_msg=f"order {k + 1}, input {i}")
        if last:
            return
        keep = [i for i, (a, b) in enumerate(zip(t_g, p_g)) if a is not None]
        for i in keep:
            assert t_g[i].requires_grad == p_g[i].requires_grad, (
                f"order {k + 1}, input {i}: requires_grad {t_g[i].requires_grad} against torch's {p_g[i].requires_grad}")
        keep = [i for i in keep if t_g[i].requires_grad]
        assert keep, f"order {k + 1}: no gradient has a graph, so order {k + 2} cannot be checked; ask for order={k + 1}"
        t_g, p_g = [t_g[i] for i in keep], [p_g[i] for i in keep]
        t_out, p_out, t_in, p_in = list(t_g), list(p_g), t_v, p_v


def train_with_closure(opt, loss_of, steps):
    """``steps`` calls of ``opt.step(closure)``, the closure computing ``loss_of(params)`` and
    its gradients; the losses, as floats (tinyres's or torch's optimizer alike)."""
    params = [p for group in opt.param_groups for p in group["params"]]

    def closure():
        opt.zero_grad()
        loss = loss_of(params)
        loss.backward()
        return loss
    return [float(opt.step(closure).detach()) for _ in range(steps)]


def assert_close_to_scale(a, b, rtol):
    """a == b to ``rtol``, and to ``rtol`` times b's largest magnitude near zero."""
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(np.abs(b).max(initial=0), 1e-300))


def check_pth_crosses_over(opt, topt, make, train, tmp_path, assert_close):
    """After 3 steps of tinyres's ``opt`` and torch's ``topt`` each side saves a .pth:
    tinyres loading torch's continues as torch goes on (unsaved), and torch loading
    tinyres's continues as torch loading its own.  ``make(lib, params)`` is a fresh
    optimizer of the same kind, ``train(lib, opt, steps)`` steps it."""
    train(tinyres, opt, 3)
    train(torch, topt, 3)
    tinyres.save({"params": [p.detach() for p in opt.param_groups[0]["params"]], "opt": opt.state_dict()},
                 tmp_path / "ours.pth")
    torch.save({"params": [p.detach() for p in topt.param_groups[0]["params"]], "opt": topt.state_dict()},
               tmp_path / "theirs.pth")
    resumed = {}
    for lib, path in ((tinyres, "theirs.pth"), (torch, "ours.pth"), (torch, "theirs.pth")):
        checkpoint = lib.load(tmp_path / path)
        ps = [lib.tensor(p.numpy().copy(), requires_grad=True) for p in checkpoint["params"]]
        again = make(lib, ps)
        again.load_state_dict(checkpoint["opt"])
        train(lib, again, 3)
        resumed[lib.__name__, path] = [p.detach().numpy() for p in again.param_groups[0]["params"]]
    train(torch, topt, 3)
    for a, b, c, d in zip(resumed["tinyres", "theirs.pth"], topt.param_groups[0]["params"],
                          resumed["torch", "ours.pth"], resumed["torch", "theirs.pth"]):
        assert_close(a, b.detach().numpy())
        assert_close(c, d)
