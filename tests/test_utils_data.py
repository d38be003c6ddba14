"""tinyres.utils.data against torch.utils.data: datasets, samplers, collation and the
DataLoader (batches, order with and without worker processes, seeds, errors)."""
import collections
import os
import pickle
import time
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import tinyres
import tinyres.utils.data as trd


def as_plain(batch):
    """A batch of either library as nested lists / dicts of (dtype name, values)."""
    if isinstance(batch, (tinyres.Tensor, torch.Tensor)):
        values = batch.array if isinstance(batch, tinyres.Tensor) else batch.numpy()
        return str(values.dtype), np.asarray(values).tolist()
    if isinstance(batch, dict):
        return {k: as_plain(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch).__name__, [as_plain(b) for b in batch]
    return batch


# -- datasets ----------------------------------------------------------------------------------

def test_tensor_dataset_subset_and_concat_index_as_torch():
    x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
    ours = trd.TensorDataset(tinyres.tensor(x), tinyres.tensor(y))
    theirs = tud.TensorDataset(torch.tensor(x), torch.tensor(y))
    assert len(ours) == len(theirs) == 6
    for i in range(6):
        assert as_plain(list(ours[i])) == as_plain(list(theirs[i]))
    ours_sub, theirs_sub = trd.Subset(ours, [4, 0, 2]), tud.Subset(theirs, [4, 0, 2])
    assert [as_plain(list(s)) for s in ours_sub] == [as_plain(list(s)) for s in theirs_sub]
    ours_cat = trd.ConcatDataset([ours, ours_sub])
    theirs_cat = tud.ConcatDataset([theirs, theirs_sub])
    assert ours_cat.cumulative_sizes == theirs_cat.cumulative_sizes == [6, 9]
    for i in list(range(9)) + [-1, -9]:
        assert as_plain(list(ours_cat[i])) == as_plain(list(theirs_cat[i]))
    assert len(ours + ours_sub) == 9


@pytest.mark.parametrize("n, lengths", [(10, [3, 7]), (10, [0.3, 0.7]), (11, [0.5, 0.5]), (7, [0.1, 0.2, 0.7]),
                                        (5, [1 / 3, 1 / 3, 1 / 3]), (4, [4, 0]), (2, [0.1, 0.1, 0.8])])
def test_random_split_lengths_and_warnings_as_torch(n, lengths):
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        ours = trd.random_split(range(n), lengths, generator=tinyres.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as theirs_warned:
        warnings.simplefilter("always")
        theirs = tud.random_split(range(n), lengths, generator=torch.Generator().manual_seed(1))
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    assert [str(w.message) for w in ours_warned] == [str(w.message) for w in theirs_warned]
    assert sorted(i for s in ours for i in s) == list(range(n))          # disjoint, all of it


def test_random_split_repeats_under_its_generator_and_the_global_seed():
    a = [list(s) for s in trd.random_split(range(20), [5, 15], generator=tinyres.Generator().manual_seed(3))]
    b = [list(s) for s in trd.random_split(range(20), [5, 15], generator=tinyres.Generator().manual_seed(3))]
    assert a == b
    tinyres.manual_seed(0)
    c = [list(s) for s in trd.random_split(range(20), [5, 15])]
    tinyres.manual_seed(0)
    assert c == [list(s) for s in trd.random_split(range(20), [5, 15])]


@pytest.mark.parametrize("call", [
    lambda m: m.TensorDataset(m_tensor(m, 3), m_tensor(m, 4)),
    lambda m: m.random_split(range(5), [2, 2]),
    lambda m: m.ConcatDataset([]),
    lambda m: m.BatchSampler(range(3), 0, False),
    lambda m: m.BatchSampler(range(3), 2, 1),
    lambda m: m.RandomSampler(range(3), replacement=1),
    lambda m: m.RandomSampler(range(3), num_samples=0),
    lambda m: m.WeightedRandomSampler([1.0, 2.0], 0),
])
def test_bad_arguments_get_torchs_exception(call):
    with pytest.raises(Exception) as theirs:
        call(tud)
    with pytest.raises(type(theirs.value)):
        call(trd)


def m_tensor(module, n):
    return torch.zeros(n) if module is tud else tinyres.zeros(n)


def test_generator_seeds_as_torch_does():
    g = tinyres.Generator()
    assert g.manual_seed(7) is g and g.initial_seed() == 7
    first = g.permutation(10).tolist()
    assert g.manual_seed(7).permutation(10).tolist() == first
    state = g.get_state()
    after = g.integers(100, size=5).tolist()
    assert g.set_state(state).integers(100, size=5).tolist() == after
    assert isinstance(g.seed(), int) and "Generator(initial_seed=" in repr(g)
    with pytest.raises(TypeError, match="manual_seed"):
        g.manual_seed(1.5)


# -- samplers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("n, batch_size, drop_last", [(10, 3, False), (10, 3, True), (9, 3, True), (2, 5, False),
                                                       (2, 5, True), (1, 1, False)])
def test_batch_sampler_as_torch(n, batch_size, drop_last):
    ours = trd.BatchSampler(trd.SequentialSampler(range(n)), batch_size, drop_last)
    theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), batch_size, drop_last)
    assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_random_samplers():
    g = tinyres.Generator().manual_seed(0)
    sampler = trd.RandomSampler(range(10), generator=g)
    epochs = [list(sampler) for _ in range(2)]
    assert all(sorted(e) == list(range(10)) for e in epochs) and epochs[0] != epochs[1]
    assert len(list(trd.RandomSampler(range(4), num_samples=10))) == 10
    drawn = list(trd.RandomSampler(range(3), replacement=True, num_samples=50))
    assert len(drawn) == 50 and set(drawn) <= {0, 1, 2}
    assert sorted(trd.SubsetRandomSampler([5, 7, 9])) == [5, 7, 9]
    counts = np.bincount(list(trd.WeightedRandomSampler([0.0, 1.0, 3.0], 4000, generator=g)), minlength=3)
    assert counts[0] == 0 and 2.5 < counts[2] / counts[1] < 3.5
    assert sorted(trd.WeightedRandomSampler([1, 1, 0, 1], 3, replacement=False)) == [0, 1, 3]


# -- collation ---------------------------------------------------------------------------------

Point = collections.namedtuple("Point", "x y")


def samples(library):
    a = (lambda v: torch.tensor(v)) if library == "torch" else (lambda v: tinyres.tensor(v))
    return [
        [(np.ones((2, 3), np.float32) * i, i, 0.5 * i, f"s{i}") for i in range(3)],
        [{"image": np.arange(4, dtype=np.uint8) + i, "label": np.int64(i), "w": np.float32(i)} for i in range(2)],
        [Point(i, [1.0, float(i)]) for i in range(3)],
        [[a(np.arange(3.0) + i), True] for i in range(2)],
        [b"raw", b"bytes"],
        [np.float64(1.5), np.float64(2.5)],
    ]


@pytest.mark.parametrize("case", range(6))
def test_default_collate_as_torch(case):
    ours = trd.default_collate(samples("tinyres")[case])
    theirs = tud.default_collate(samples("torch")[case])
    assert as_plain(ours) == as_plain(theirs)
    if case == 2:
        assert isinstance(ours, Point)


def test_default_convert_as_torch():
    data = {"a": np.arange(3), "b": (np.float32(1.0), "text"), "c": [np.zeros(2)]}
    assert as_plain(trd.default_convert(data)) == as_plain(tud.default_convert(data))


@pytest.mark.parametrize("batch", [
    [object(), object()],
    [[1, 2], [1]],
    [np.array(["a", "b"]), np.array(["c", "d"])],
])
def test_default_collate_errors_as_torch(batch):
    with pytest.raises(Exception) as theirs:
        tud.default_collate(batch)
    with pytest.raises(type(theirs.value)) as ours:
        trd.default_collate(batch)
    assert str(ours.value).split(";")[0] == str(theirs.value).split(";")[0]


# -- the DataLoader ----------------------------------------------------------------------------

def worker_info(library):
    return (tud if library == "torch" else trd).get_worker_info()


class Numbers(trd.Dataset, tud.Dataset):
    """Sample i: (a float32 vector of i, the label i, the worker that fetched it), for either
    library's loader (``library`` says whose ``get_worker_info`` to ask)."""

    def __init__(self, n=23, library="tinyres"):
        self.n, self.library = n, library

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        info = worker_info(self.library)
        return np.full(2, i, np.float32), i, -1 if info is None else info.id


def TorchNumbers(n=23):
    return Numbers(n, "torch")


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("kwargs", [dict(batch_size=4), dict(batch_size=4, drop_last=True), dict(batch_size=None),
                                    dict(batch_size=5, num_workers=2), dict(batch_size=3, num_workers=3,
                                                                            prefetch_factor=1)])
def test_batches_and_worker_assignment_as_torch(kwargs):
    ours, theirs = trd.DataLoader(Numbers(), **kwargs), tud.DataLoader(TorchNumbers(), **kwargs)
    assert len(ours) == len(theirs)
    assert [as_plain(b) for b in ours] == [as_plain(b) for b in theirs]


def test_batch_sampler_and_collate_fn_arguments():
    sampler = [[3, 1], [0], [2, 2]]
    ours = trd.DataLoader(Numbers(4), batch_sampler=sampler, collate_fn=lambda s: [x[1] for x in s])
    theirs = tud.DataLoader(TorchNumbers(4), batch_sampler=sampler, collate_fn=lambda s: [x[1] for x in s])
    assert list(ours) == list(theirs) == [[3, 1], [0], [2, 2]]


def labels(loader):
    return [b[1].array.tolist() for b in loader]


def test_shuffle_is_the_same_with_or_without_workers_and_follows_the_generator():
    def run(workers, seed):
        return labels(trd.DataLoader(Numbers(), batch_size=4, shuffle=True, num_workers=workers,
                                     generator=tinyres.Generator().manual_seed(seed)))
    assert run(0, 5) == run(2, 5) != run(0, 6)
    assert sorted(sum(run(2, 5), [])) == list(range(23))


class Streams(trd.IterableDataset, tud.IterableDataset):
    """0 .. n-1, split between the workers by their ids."""

    def __init__(self, n, library="tinyres"):
        self.n, self.library = n, library

    def __iter__(self):
        info = worker_info(self.library)
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


def TorchStreams(n):
    return Streams(n, "torch")


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("workers, batch_size, drop_last", [(0, 3, False), (2, 3, False), (3, 3, False),
                                                             (2, 2, True), (2, None, False)])
def test_iterable_dataset_as_torch(workers, batch_size, drop_last):
    ours = trd.DataLoader(Streams(10), batch_size=batch_size, num_workers=workers, drop_last=drop_last)
    theirs = tud.DataLoader(TorchStreams(10), batch_size=batch_size, num_workers=workers, drop_last=drop_last)
    assert [as_plain(b) for b in ours] == [as_plain(b) for b in theirs]


class Seeds(trd.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        info = trd.get_worker_info()
        return info.seed, info.id, np.random.randint(2**31), os.getpid()


def test_worker_seeds_differ_by_worker_and_by_epoch_and_repeat_with_the_generator():
    def epoch(seed, **kwargs):
        loader = trd.DataLoader(Seeds(), batch_size=1, num_workers=2, generator=tinyres.Generator().manual_seed(seed),
                                **kwargs)
        return [[x.array.item() for x in b[:3]] for b in loader]
    a = epoch(1)
    seeds = {(s, w) for s, w, _ in a}
    base = min(s for s, _ in seeds)
    assert seeds == {(base, 0), (base + 1, 1)}                      # worker seed = base_seed + worker id
    assert len({r for _, _, r in a}) == 4                            # NumPy's global generator differs
    assert epoch(1) == a and epoch(2) != a


def test_worker_init_fn_and_persistent_workers():
    def init(worker_id):
        np.random.seed(1000 + worker_id)
    loader = trd.DataLoader(Seeds(), batch_size=1, num_workers=2, worker_init_fn=init, persistent_workers=True)
    first, second = ([[x.array.item() for x in b] for b in loader] for _ in range(2))
    first = list(first)
    second = list(second)
    expected0 = np.random.RandomState(1000).randint(2**31)
    assert first[0][2] == expected0 and first[1][2] == np.random.RandomState(1001).randint(2**31)
    assert {b[3] for b in first} == {b[3] for b in second}           # the same worker processes
    assert {b[3] for b in first}.isdisjoint({os.getpid()})
    loader._iterator._shutdown()


def test_an_abandoned_epoch_does_not_leak_into_the_next_with_persistent_workers():
    loader = trd.DataLoader(Numbers(), batch_size=2, num_workers=2, persistent_workers=True)
    it = iter(loader)
    next(it)
    assert labels(loader) == [[2 * i, 2 * i + 1] for i in range(11)] + [[22]]
    loader._iterator._shutdown()


def test_in_order_false_gives_every_batch():
    got = labels(trd.DataLoader(Numbers(), batch_size=4, num_workers=2, in_order=False))
    assert sorted(sum(got, [])) == list(range(23))


class Faulty(trd.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 3:
            raise KeyError(f"no sample {i}")
        return i


class Dying(trd.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, i):
        os._exit(1)


class Slow(trd.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        time.sleep(3)
        return i


def test_a_workers_exception_comes_back_with_its_traceback():
    loader = trd.DataLoader(Faulty(), batch_size=2, num_workers=2)
    it = iter(loader)
    assert next(it).array.tolist() == [0, 1]
    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 1") as info:
        next(it)
    assert "no sample 3" in str(info.value) and "Original Traceback" in str(info.value)
    with pytest.raises(KeyError, match="no sample 3"):                # as torch, without workers too
        list(trd.DataLoader(Faulty(), batch_size=2))


def test_a_dead_worker_and_a_timeout_raise():
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+\) exited unexpectedly"):
        list(trd.DataLoader(Dying(), num_workers=1))
    with pytest.raises(RuntimeError, match="DataLoader timed out after 1 seconds"):
        list(trd.DataLoader(Slow(), num_workers=1, timeout=1))


def test_worker_init_fn_failure_is_reported():
    def init(worker_id):
        raise ValueError("bad init")
    with pytest.raises(ValueError, match="bad init"):
        list(trd.DataLoader(Numbers(4), num_workers=1, worker_init_fn=init))


def test_more_workers_than_cpus_warns_as_torch():
    workers = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()) + 1
    with pytest.warns(UserWarning) as theirs:
        list(tud.DataLoader(TorchNumbers(2), num_workers=workers))
    with pytest.warns(UserWarning) as ours:
        list(trd.DataLoader(Numbers(2), num_workers=workers))
    assert str(ours[0].message) == str(theirs[0].message)


def test_pin_memory_without_a_gpu_warns_as_torch():
    with pytest.warns(UserWarning, match="'pin_memory' argument is set as true but no accelerator is found"):
        loader = trd.DataLoader(Numbers(4), batch_size=2, pin_memory=True)
    assert labels(loader) == [[0, 1], [2, 3]]


@pytest.mark.parametrize("kwargs", [
    dict(num_workers=-1), dict(timeout=-1), dict(prefetch_factor=2), dict(num_workers=1, prefetch_factor=-1),
    dict(persistent_workers=True), dict(sampler=[0, 1], shuffle=True), dict(batch_sampler=[[0]], batch_size=2),
    dict(batch_sampler=[[0]], drop_last=True), dict(batch_size=None, drop_last=True),
    dict(multiprocessing_context="fork"), dict(num_workers=1, multiprocessing_context="no-such-method"),
])
def test_dataloader_errors_as_torch(kwargs):
    with pytest.raises(Exception) as theirs:
        tud.DataLoader(TorchNumbers(4), **kwargs)
    with pytest.raises(type(theirs.value)) as ours:
        trd.DataLoader(Numbers(4), **kwargs)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("kwargs", [dict(shuffle=True), dict(sampler=[0]), dict(batch_sampler=[[0]])])
def test_iterable_dataset_refuses_an_order_as_torch(kwargs):
    with pytest.raises(ValueError) as theirs:
        tud.DataLoader(TorchStreams(3), **kwargs)
    with pytest.raises(ValueError) as ours:
        trd.DataLoader(Streams(3), **kwargs)
    assert str(ours.value).split(", but")[0] == str(theirs.value).split(", but")[0]


def test_fixed_attributes_cannot_change_after_init():
    loader = trd.DataLoader(Numbers(4))
    with pytest.raises(ValueError, match="batch_size attribute should not be set after DataLoader is initialized"):
        loader.batch_size = 3
    loader.num_workers = 0                                            # not one of the fixed ones


def test_tinyres_datasets_and_models_train_through_it():
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    loader = trd.DataLoader(trd.TensorDataset(tinyres.tensor(x), tinyres.tensor(y)), batch_size=8, shuffle=True,
                            generator=tinyres.Generator().manual_seed(0))
    model = tinyres.nn.Linear(4, 2)
    opt = tinyres.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for _ in range(10):
        for xb, yb in loader:
            loss = tinyres.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])


def test_the_old_utils_names_warn_and_point_to_torch_weights():
    with pytest.warns(DeprecationWarning, match="tinyres.torch_weights.load_torch_state_dict"):
        f = tinyres.utils.load_torch_state_dict
    assert f is tinyres.torch_weights.load_torch_state_dict
    assert pickle.loads(pickle.dumps(trd.TensorDataset(tinyres.zeros(2)))).tensors[0].shape == (2,)
