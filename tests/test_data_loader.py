"""tinyres.data.DataLoader: batching, lengths, drop_last, shuffling as a pure function of
(seed, epoch), resuming from state_dict, validation."""
import numpy as np
import pytest

import tinyres
from tinyres.data import BundledMNIST, DataLoader


class Indexed:
    """Sample i is a 1x2x2 image filled with i, labelled i; with or without get_batch."""

    def __init__(self, n, batched=True):
        self.n = n
        if batched:
            self.get_batch = lambda idx: (self.images(np.asarray(idx)), np.asarray(idx, np.int64))

    def images(self, idx):
        return np.broadcast_to(idx.astype(np.float32)[:, None, None, None], (len(idx), 1, 2, 2)).copy()

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.images(np.array([i]))[0], i


def served(loader):
    """The labels of each batch of one epoch, as lists."""
    return [labels.numpy().tolist() for _, labels in loader]


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("n,size,drop_last,sizes", [
    (10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (9, 3, True, [3, 3, 3]),
    (5, 10, False, [5]), (1, 1, False, [1]),
])
def test_batches_and_lengths(batched, n, size, drop_last, sizes):
    loader = DataLoader(Indexed(n, batched), batch_size=size, drop_last=drop_last)
    assert len(loader) == len(sizes)
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == sizes
    images, labels = batches[0]
    assert isinstance(images, tinyres.Tensor) and isinstance(labels, tinyres.Tensor)
    assert images.dtype == np.float32 and labels.dtype == np.int64 and images.shape == (sizes[0], 1, 2, 2)
    assert sum(served(loader), []) == list(range(sum(sizes)))


def test_shuffle_is_a_pure_function_of_seed_and_epoch():
    a = DataLoader(Indexed(50), batch_size=8, shuffle=True, seed=123)
    epochs = [sum(served(a), []) for _ in range(3)]
    for k, order in enumerate(epochs):
        assert sorted(order) == list(range(50))
        assert order == np.random.default_rng([123, k]).permutation(50).tolist() == a.order(k).tolist()
    assert epochs[0] != epochs[1]
    b = DataLoader(Indexed(50), batch_size=8, shuffle=True, seed=123)
    b.epoch = 2
    assert sum(served(b), []) == epochs[2]
    c = DataLoader(Indexed(50), batch_size=8, shuffle=True, seed=124)
    assert sum(served(c), []) != epochs[0]


def test_seed_from_manual_seed():
    tinyres.manual_seed(5)
    a = DataLoader(Indexed(20), shuffle=True)
    tinyres.manual_seed(5)
    assert DataLoader(Indexed(20), shuffle=True).seed == a.seed


def test_resume_mid_epoch_from_state_dict():
    loader = DataLoader(Indexed(23), batch_size=4, shuffle=True, seed=7)
    first = served(loader)
    it = iter(loader)
    second = [next(it)[1].numpy().tolist() for _ in range(2)]
    state = loader.state_dict()
    assert state == {"seed": 7, "epoch": 1, "batch": 2}
    rest = [labels.numpy().tolist() for _, labels in it]
    assert loader.state_dict() == {"seed": 7, "epoch": 2, "batch": 0}

    resumed = DataLoader(Indexed(23), batch_size=4, shuffle=True, seed=0)
    resumed.load_state_dict(state)
    assert served(resumed) == rest
    fresh = DataLoader(Indexed(23), batch_size=4, shuffle=True, seed=7)
    fresh.epoch = 2
    assert served(resumed) == served(fresh)                   # and on it goes, in step
    assert second + rest != first


def test_abandoned_epoch_starts_a_new_one():
    loader = DataLoader(Indexed(12), batch_size=4, shuffle=True, seed=1)
    for _ in loader:
        break
    assert loader.state_dict() == {"seed": 1, "epoch": 1, "batch": 0}
    assert sum(served(loader), []) == loader.order(1).tolist()


def test_transform_and_device():
    loader = DataLoader(Indexed(6), batch_size=6, transform=lambda x: x * 2, device="cpu")
    images, labels = next(iter(loader))
    np.testing.assert_array_equal(images.numpy()[:, 0, 0, 0], np.arange(6) * 2)
    assert str(images.device) == "cpu"


def test_real_dataset_batches_match_get_batch():
    ds = BundledMNIST(train=False)
    loader = DataLoader(ds, batch_size=256, shuffle=True, seed=3)
    images, labels = next(iter(loader))
    expected, expected_labels = ds.get_batch(loader.order(0)[:256])
    np.testing.assert_array_equal(images.numpy(), expected)
    np.testing.assert_array_equal(labels.numpy(), expected_labels)


@pytest.mark.parametrize("kwargs,match", [
    (dict(batch_size=0), "batch_size must be a positive integer, got 0"),
    (dict(batch_size=-2), "batch_size must be a positive integer"),
    (dict(batch_size=2.5), "batch_size must be a positive integer"),
    (dict(batch_size=True), "batch_size must be a positive integer"),
    (dict(batch_size=11, drop_last=True), "no batch at all"),
    (dict(seed=-1), "seed must be a non-negative integer"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DataLoader(Indexed(10), **kwargs)


def test_empty_dataset_and_bad_state():
    with pytest.raises(ValueError, match="Indexed is empty"):
        DataLoader(Indexed(0))
    loader = DataLoader(Indexed(10), batch_size=5)
    with pytest.raises(ValueError, match="batch < 2"):
        loader.load_state_dict({"seed": 1, "epoch": 0, "batch": 2})


def test_float_labels_keep_their_dtype_and_class_indices_become_int64():
    class MultiHot:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.zeros((1, 2, 2), np.float32), np.eye(3, dtype=np.float32)[i % 3]
    images, labels = next(iter(DataLoader(MultiHot(), batch_size=4)))
    assert labels.dtype == np.float32 and labels.shape == (4, 3)
