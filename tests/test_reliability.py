"""Long runs and big graphs: memory that stays flat over hundreds of steps, graphs that are
freed, deep graphs without recursion, and the same seed giving the same weights in two
processes.  (docs/reliability.md lists what is guaranteed.)"""
import gc
import hashlib
import resource
import subprocess
import sys
import tracemalloc
import weakref
from pathlib import Path

import numpy as np
import pytest

import tinyres
from tinyres import models, nn, optim
from tinyres.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]


def test_a_10000_op_chain_backpropagates_and_is_freed():
    x = tinyres.ones(2, dtype="float64", requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    node = weakref.ref(y.grad_fn)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(2, 1.0001 ** 10_000), rtol=1e-8)
    del y
    gc.collect()
    assert node() is None                    # nothing kept the graph alive


def test_resnet152_forward_and_backward_then_the_graph_is_gone():
    model = models.resnet152(num_classes=3)
    x = tinyres.randn(2, 3, 32, 32, requires_grad=True)        # 1x1 maps at the end: BN needs 2 images
    loss = F.cross_entropy(model(x), tinyres.tensor(np.array([1, 2])))
    root = weakref.ref(loss.grad_fn)
    loss.backward()
    assert x.grad.shape == (2, 3, 32, 32) and all(p.grad is not None for p in model.parameters())
    del loss
    gc.collect()
    assert root() is None


@pytest.mark.soak
def test_soak_300_steps_keep_memory_flat():
    """A small model for 300 training steps: after a warm-up, Python allocations and the
    process's resident memory grow by under 5%, and no step's graph outlives it."""
    tinyres.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    x, y = tinyres.randn(16, 1, 12, 12), tinyres.tensor(np.arange(16) % 10)
    graphs = []

    def step():
        loss = F.cross_entropy(model(x), y)
        graphs.append(weakref.ref(loss.grad_fn))
        opt.zero_grad()
        loss.backward()
        opt.step()

    def rss_kb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() // 1024

    # threadpoolctl's ctypes look-ups (BLAS kept on one thread) fill a bounded cache, 0-25 KB
    # a run; it is not ours and not a leak, so it is left out of the count
    not_ours = [tracemalloc.Filter(False, "*threadpoolctl.py"), tracemalloc.Filter(False, "*ctypes*"),
                tracemalloc.Filter(False, tracemalloc.__file__)]
    for _ in range(50):
        step()
    gc.collect()
    tracemalloc.start()
    start, start_rss = tracemalloc.take_snapshot().filter_traces(not_ours), rss_kb()
    for _ in range(250):
        step()
    gc.collect()
    end, rss = tracemalloc.take_snapshot().filter_traces(not_ours), rss_kb()
    tracemalloc.stop()
    growth = end.compare_to(start, "lineno")
    assert sum(g.size_diff for g in growth) < 50_000, [str(g) for g in growth[:5]]   # 200 bytes a step
    assert rss < 1.05 * start_rss, (start_rss, rss)
    assert all(g() is None for g in graphs)


DETERMINISM = """
import hashlib, sys
import numpy as np
import tinyres
from tinyres import nn, optim
from tinyres.data import BundledMNIST, DataLoader, transforms
from tinyres.nn import functional as F

seed = int(sys.argv[1])
tinyres.manual_seed(seed)
data = BundledMNIST(train=True).subset(np.arange(256))
augment = transforms.Compose([transforms.RandomCrop(28, padding=2, generator=np.random.default_rng(seed)),
                              transforms.RandomHorizontalFlip(generator=np.random.default_rng(seed + 1))])
loader = DataLoader(data, batch_size=32, shuffle=True, seed=seed, transform=augment)
model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.3),
                      nn.Conv2d(8, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for images, labels in loader:
    loss = F.cross_entropy(model(images), labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
digest = hashlib.sha256()
for value in model.state_dict().values():
    digest.update(np.ascontiguousarray(value.numpy()).tobytes())
print(digest.hexdigest())
"""


def weights_after_training(seed, threads):
    env = {"PYTHONPATH": str(ROOT), "TINYRES_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", DETERMINISM, str(seed)], capture_output=True, text=True,
                         env=env, check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("threads", [1, 2])
def test_the_same_seed_gives_bit_identical_weights_in_two_processes(threads):
    """Shuffling, augmentation, dropout and initialisation all follow the seed; with the
    same number of threads two processes end with the same bytes, another seed does not."""
    first = weights_after_training(0, threads)
    assert weights_after_training(0, threads) == first
    assert weights_after_training(1, threads) != first
    assert len(first) == len(hashlib.sha256().hexdigest())
