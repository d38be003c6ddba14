"""CPU threads and scratch memory (``tinyres.kernels.threads``): ``parallel_for``, ``parallel_map``,
``parallel_matmul``, ``workspace`` and the thread count."""
import subprocess
import sys

import numpy as np
import pytest

import tinyres
from tinyres.kernels import threads


@pytest.fixture
def set_threads(monkeypatch):
    """Set tinyres's thread count for one test (the pool is made anew and dropped after)."""
    def set_threads(n):
        monkeypatch.setattr(threads, "_pool", None)
        threads.set_num_threads(n)
    previous = threads.get_num_threads()
    yield set_threads
    threads.set_num_threads(previous)


@pytest.mark.parametrize("n_threads, n", [(1, 7), (2, 7), (3, 7), (4, 2), (2, 0)])
def test_parallel_for_covers_the_range_once_in_order(set_threads, n_threads, n):
    set_threads(n_threads)
    seen = np.zeros(n, dtype=int)

    def visit(s):
        seen[s] += 1
        return (s.start, s.stop)
    parts = threads.parallel_for(visit, n)
    assert (seen == 1).all()
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))          # contiguous, in order
    assert len(parts) == max(1, min(n_threads, n))


def test_parallel_for_uses_other_threads_and_reraises_their_errors(set_threads):
    import threading
    set_threads(2)
    names = set()

    def work(s):
        names.add(threading.current_thread().name)
        if s.start > 0:
            raise ValueError("second slice failed")
    with pytest.raises(ValueError, match="second slice failed"):
        threads.parallel_for(work, 4)
    assert len(names) == 2


def test_nested_parallel_for_runs_inline(set_threads):
    set_threads(2)
    inner = threads.parallel_for(lambda s: threads.parallel_for(lambda t: (t.start, t.stop), s.stop - s.start), 4)
    assert inner == [[(0, 2)], [(0, 2)]]


def test_cupy_arrays_are_never_split(fake_cupy, set_threads):
    set_threads(2)
    assert threads.parallel_for(lambda s: (s.start, s.stop), 8, xp=fake_cupy) == [(0, 8)]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_what_is_not_a_positive_int(bad):
    with pytest.raises(ValueError, match=r"set_num_threads: expected a positive int, got"):
        threads.set_num_threads(bad)


def test_num_threads_default_comes_from_the_environment():
    code = "import tinyres; print(tinyres.get_num_threads())"
    for env, want in (({"OMP_NUM_THREADS": "3"}, "3"), ({"TINYRES_NUM_THREADS": "5", "OMP_NUM_THREADS": "3"}, "5")):
        out = subprocess.run([sys.executable, "-c", code], env={**__import__("os").environ, **env},
                             capture_output=True, text=True, check=True).stdout
        assert out.strip() == want


@pytest.mark.parametrize("n_threads", [1, 2])
def test_parallel_map_cuts_arrays_of_one_layout_into_flat_blocks(set_threads, monkeypatch, n_threads):
    set_threads(n_threads)
    monkeypatch.setattr(threads, "BLOCK", 5)
    x = np.arange(24.0).reshape(2, 3, 4).transpose(2, 0, 1)     # contiguous in the memory order 1, 2, 0
    out, pieces = np.empty_like(x), []

    def double(a, out):
        pieces.append(a.shape)
        np.multiply(a, 2, out=out)
    threads.parallel_map(double, x, out)
    np.testing.assert_array_equal(out, 2 * x)
    assert sorted(pieces) == [(4,)] + [(5,)] * 4


def test_parallel_map_slices_arrays_of_different_layouts_along_the_outermost_axis(set_threads):
    set_threads(2)
    x = np.arange(24.0).reshape(2, 3, 4).transpose(2, 0, 1)     # memory order: axis 1, 2, 0
    out, shapes = np.zeros((4, 2, 3)), []                         # C order

    def double(a, out):
        shapes.append(a.shape)
        np.multiply(a, 2, out=out)
    threads.parallel_map(double, x, out)
    np.testing.assert_array_equal(out, 2 * x)
    assert sorted(shapes) == [(4, 1, 3), (4, 1, 3)]      # cut along axis 1 (2 entries): one each


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("shapes", [((5, 4), (4, 3)), ((2, 7, 4), (2, 4, 6)), ((2, 7, 4), (4, 6))])
def test_parallel_matmul_is_matmul(set_threads, n_threads, shapes):
    set_threads(n_threads)
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s) for s in shapes)
    np.testing.assert_allclose(threads.parallel_matmul(a, b), a @ b, rtol=1e-13)
    np.testing.assert_allclose(threads.parallel_matmul(a, b.swapaxes(-1, -2).copy().swapaxes(-1, -2)), a @ b,
                               rtol=1e-13)


def test_workspace_is_reused_grown_and_per_thread(set_threads):
    threads.empty_workspace()
    a = threads.workspace("test", (4, 5), np.float32)
    b = threads.workspace("test", (2, 3), np.float64)            # smaller: the same memory
    assert np.shares_memory(a, b) and b.shape == (2, 3) and b.dtype == np.float64
    c = threads.workspace("test", (100, 100), np.float32)        # larger: a new buffer
    assert c.shape == (100, 100) and not np.shares_memory(a, c)
    assert not np.shares_memory(c, threads.workspace("other", (100, 100), np.float32))
    set_threads(2)
    others = threads.parallel_for(lambda s: threads.workspace("test", (100, 100), np.float32), 2)
    assert np.shares_memory(others[0], c) and not np.shares_memory(others[1], c)
    threads.empty_workspace()
    assert not np.shares_memory(threads.workspace("test", (100, 100), np.float32), c)
