"""``DataLoader`` as ``torch.utils.data`` has it: samples, fetched by worker processes, collated into batches.

How it works, in torch's design:

* A *sampler* gives the order of the dataset's indices (``SequentialSampler``, or
  ``RandomSampler`` for ``shuffle=True``); a ``BatchSampler`` groups them into lists of
  ``batch_size``.  An ``IterableDataset`` has no indices: its stream is cut into batches.
* A *fetcher* turns one list of indices into one batch: ``collate_fn([dataset[i] for i in
  indices])`` (``dataset.__getitems__(indices)`` when the dataset has it).
* With ``num_workers=0`` the fetcher runs here.  With ``num_workers=N`` there are N worker
  processes, each with its own index queue; the loader hands out tasks round robin, keeps
  ``prefetch_factor * N`` of them in flight, and gives the batches back in the sampler's
  order (``in_order=False``: as they arrive).  So the batches are the same with 0 or N
  workers.
* Worker ``i`` seeds Python's ``random``, tinyres's generator (``tinyres.manual_seed``) and
  NumPy's global generator from ``base_seed + i``, where ``base_seed`` is drawn from the
  loader's ``generator`` at every epoch; random augmentation in ``__getitem__`` therefore
  differs between workers and between epochs, and repeats under ``tinyres.manual_seed``.
  ``get_worker_info()`` tells code in a worker which one it is.
* An exception in a worker comes back as the same exception type here, with the worker's
  traceback in its message; a worker that dies or a ``timeout`` raises a RuntimeError.
"""
import itertools
import multiprocessing
import os
import pickle
import queue
import random
import sys
import traceback
import warnings
from multiprocessing.reduction import ForkingPickler

import numpy as np

from ...core import backend
from ...core.tensor import Tensor
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

_STATUS_CHECK_INTERVAL = 2.0      # seconds between checks that the workers (or the parent) live


class WorkerInfo:
    """What ``get_worker_info()`` returns in a worker: ``id``, ``num_workers``, ``seed``, ``dataset``."""

    def __init__(self, id, num_workers, seed, dataset):
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __repr__(self):
        return f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, dataset={self.dataset!r})"


_worker_info = None


def get_worker_info():
    """The ``WorkerInfo`` of this worker process, or None in the main process."""
    return _worker_info


class _ExceptionWrapper:
    """An exception caught in a worker, carried back as its type and formatted traceback."""

    def __init__(self, where):
        exc_type, exc, _ = sys.exc_info()
        try:
            pickle.dumps(exc_type)
        except Exception:                 # a class defined inside a function cannot travel
            exc_type = RuntimeError
        self.exc_type = exc_type
        self.message = f"Caught {type(exc).__name__} {where}.\nOriginal {traceback.format_exc()}"

    def reraise(self):
        try:
            exception = self.exc_type(self.message)
        except Exception:                 # a type whose constructor wants other arguments
            raise RuntimeError(self.message) from None
        raise exception


class _Exhausted:
    """A worker's answer once its copy of an IterableDataset has run out."""

    def __init__(self, worker_id):
        self.worker_id = worker_id


class _InfiniteConstantSampler(Sampler):
    """None forever: the 'indices' of an IterableDataset, which a batch sampler counts out."""

    def __iter__(self):
        return itertools.repeat(None)


class _MapFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.dataset, self.auto_collation, self.collate_fn = dataset, auto_collation, collate_fn

    def fetch(self, index):
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        getitems = getattr(self.dataset, "__getitems__", None)
        samples = getitems(index) if getitems else [self.dataset[i] for i in index]
        return self.collate_fn(samples)


class _IterableFetcher:
    def __init__(self, dataset, auto_collation, collate_fn, drop_last):
        self.iterator, self.ended = iter(dataset), False
        self.auto_collation, self.collate_fn, self.drop_last = auto_collation, collate_fn, drop_last

    def fetch(self, index):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.iterator))
        samples = list(itertools.islice(self.iterator, len(index)))
        if len(samples) < len(index):
            self.ended = True
            if not samples or self.drop_last:
                raise StopIteration
        return self.collate_fn(samples)


def _seed_everything(seed, worker_id, base_seed):
    random.seed(seed)
    backend.manual_seed(seed)
    np.random.seed(np.random.SeedSequence([worker_id, base_seed]).generate_state(4))


def _worker_loop(fetcher_class, dataset, index_queue, result_queue, auto_collation, collate_fn, drop_last,
                 base_seed, worker_init_fn, worker_id, num_workers, parent_pid):
    """A worker process: answer every task ``(epoch, idx, index)`` with ``(epoch, idx, batch)``
    on the result queue until it gets None or its parent is gone."""
    global _worker_info
    seed = base_seed + worker_id
    _seed_everything(seed, worker_id, base_seed)
    _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
    error = None
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception:
        error = _ExceptionWrapper(f"in DataLoader worker process {worker_id}")
    epoch, fetcher = None, None
    while True:
        try:
            task = index_queue.get(timeout=_STATUS_CHECK_INTERVAL)
        except queue.Empty:
            if os.getppid() != parent_pid:         # the main process died: do not linger
                return
            continue
        if task is None:
            return
        task_epoch, idx, index = task
        if task_epoch != epoch:                    # a new epoch: a new iterator over the dataset
            epoch, fetcher = task_epoch, None
        if error is not None:
            data, error = error, None
        else:
            try:
                if fetcher is None:
                    fetcher = fetcher_class(dataset, auto_collation, collate_fn, drop_last)
                data = fetcher.fetch(index)
            except StopIteration:
                data = _Exhausted(worker_id)
            except Exception:
                data = _ExceptionWrapper(f"in DataLoader worker process {worker_id}")
        try:                                       # pickled here, so a failure is reported, not lost
            message = ForkingPickler.dumps((task_epoch, idx, data))
        except Exception:
            message = ForkingPickler.dumps((task_epoch, idx, _ExceptionWrapper(
                f"in DataLoader worker process {worker_id} while sending its batch")))
        result_queue.put(bytes(message))
        del data, message


def _pin(data):
    """``data`` with every Tensor's host array copied to pinned memory."""
    if isinstance(data, Tensor):
        return Tensor(backend.pin_memory(data.array)) if not backend.is_device_array(data.array) else data
    if isinstance(data, dict):
        return type(data)((k, _pin(v)) for k, v in data.items())
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(_pin(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(_pin(d) for d in data)
    return data


class _SingleProcessIter:
    def __init__(self, loader):
        self._loader = loader
        loader._base_seed()             # drawn as with workers, so the generator's order is the same
        self._indices = iter(loader._index_sampler)
        self._fetcher = loader._fetcher_class(loader.dataset, loader._auto_collation, loader.collate_fn,
                                              loader.drop_last)

    def __iter__(self):
        return self

    def __next__(self):
        data = self._fetcher.fetch(next(self._indices))
        return _pin(data) if self._loader._pin else data

    def __len__(self):
        return len(self._loader)


class _MultiProcessIter:
    def __init__(self, loader):
        self._loader = loader
        self._num_workers = loader.num_workers
        self._timeout, self._in_order = loader.timeout, loader.in_order
        self._prefetch = loader.prefetch_factor * loader.num_workers
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        if cpus and self._num_workers > cpus:
            warnings.warn(f"This DataLoader will create {self._num_workers} worker processes in total. Our suggested "
                          f"max number of worker in current system is {cpus}, which is smaller than what this "
                          "DataLoader is going to create. Please be aware that excessive worker creation might get "
                          "DataLoader running slow or even freeze, lower the worker number to avoid potential "
                          "slowness/freeze if necessary.")
        ctx = loader.multiprocessing_context or multiprocessing.get_context()
        self._result_queue = ctx.Queue()
        self._index_queues, self._workers = [], []
        self._epoch = -1
        base_seed = loader._base_seed()
        for i in range(self._num_workers):
            index_queue = ctx.Queue()
            index_queue.cancel_join_thread()
            worker = ctx.Process(target=_worker_loop, daemon=True, args=(
                loader._fetcher_class, loader.dataset, index_queue, self._result_queue, loader._auto_collation,
                loader.collate_fn, loader.drop_last, base_seed, loader.worker_init_fn, i, self._num_workers,
                os.getpid()))
            worker.start()
            self._index_queues.append(index_queue)
            self._workers.append(worker)
        self._shut = False
        self._reset(first=True)

    def _reset(self, first=False):
        """Start an epoch: a fresh sampler iterator, every worker active, the queue primed.
        (Persistent workers reseed only when they start: torch's rule.)"""
        self._epoch += 1
        self._indices = iter(self._loader._index_sampler)
        self._sent = 0
        self._in_flight = []              # task numbers sent and not yet given out, in order
        self._arrived = {}                # task number -> its batch, come back early
        self._active = [True] * self._num_workers
        self._next_worker = itertools.cycle(range(self._num_workers))
        for _ in range(self._prefetch):
            self._send()

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._loader)

    def _send(self):
        if not any(self._active) or self._indices is None:
            return
        try:
            index = next(self._indices)
        except StopIteration:
            self._indices = None
            return
        worker = next(w for w in self._next_worker if self._active[w])
        self._index_queues[worker].put((self._epoch, self._sent, index))
        self._in_flight.append(self._sent)
        self._sent += 1

    def _receive(self):
        """The next ``(task number, batch)`` of this epoch from any worker."""
        while True:
            wait = self._timeout if self._timeout > 0 else _STATUS_CHECK_INTERVAL
            try:
                epoch, idx, data = pickle.loads(self._result_queue.get(timeout=wait))
            except queue.Empty:
                if self._timeout > 0:
                    self._shutdown()
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds") from None
                dead = [w.pid for w in self._workers if not w.is_alive()]
                if dead:
                    self._shutdown()
                    raise RuntimeError(f"DataLoader worker (pid(s) {', '.join(map(str, dead))}) exited "
                                       "unexpectedly") from None
                continue
            if epoch == self._epoch:      # an abandoned epoch's batch (persistent workers) is dropped
                return idx, data

    def __next__(self):
        while True:
            if not self._in_flight:
                if not self._loader.persistent_workers:
                    self._shutdown()
                raise StopIteration
            ready = self._in_flight[0] if self._in_order else next(iter(self._arrived), None)
            if ready in self._arrived:
                data = self._arrived.pop(ready)
                self._in_flight.remove(ready)
                self._send()
                if isinstance(data, _Exhausted):
                    continue
                if isinstance(data, _ExceptionWrapper):
                    self._shutdown()
                    data.reraise()
                return _pin(data) if self._loader._pin else data
            idx, data = self._receive()
            if isinstance(data, _Exhausted):
                self._active[data.worker_id] = False
            self._arrived[idx] = data

    def _shutdown(self):
        if getattr(self, "_shut", True):
            return
        self._shut = True
        for q in self._index_queues:
            q.put(None)
        for w in self._workers:
            w.join(timeout=_STATUS_CHECK_INTERVAL)
            if w.is_alive():
                w.terminate()
        for q in self._index_queues + [self._result_queue]:
            q.cancel_join_thread()
            q.close()

    def __del__(self):
        self._shutdown()


class DataLoader:
    """Batches of ``dataset``, as ``torch.utils.data.DataLoader`` (same arguments, defaults and errors).

    ``batch_size`` samples per batch (``None``: one sample at a time, not collated);
    ``shuffle`` a new random order every epoch (from ``generator``); or a ``sampler`` /
    ``batch_sampler`` of your own; ``num_workers`` processes fetch batches in parallel
    (see the module); ``collate_fn`` makes a batch of a list of samples
    (``default_collate``); ``pin_memory`` puts batches in page-locked host memory when a GPU
    is in use; ``drop_last`` drops a short last batch; ``timeout`` seconds to wait for a
    worker's batch (0: for ever); ``worker_init_fn(worker_id)`` runs first in each worker;
    ``prefetch_factor`` batches in flight per worker (2); ``persistent_workers`` keeps the
    workers between epochs; ``in_order=False`` gives batches as they come.
    """

    _FIXED = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None, num_workers=0,
                 collate_fn=None, pin_memory=False, drop_last=False, timeout=0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor=None, persistent_workers=False,
                 pin_memory_device="", in_order=True):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to disable "
                             "multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing.let num_workers "
                             "> 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        iterable = isinstance(dataset, IterableDataset)
        if iterable:
            for name, value in (("shuffle", shuffle), ("sampler", sampler), ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} option, "
                                     f"but got {name}={value}")
        shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, "
                                 "and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with "
                             "drop_last")
        if sampler is None:
            if iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset, self.batch_size, self.sampler, self.batch_sampler = dataset, batch_size, sampler, batch_sampler
        self.drop_last, self.num_workers, self.timeout, self.worker_init_fn = drop_last, num_workers, timeout, \
            worker_init_fn
        self.generator, self.prefetch_factor, self.persistent_workers = generator, prefetch_factor, \
            persistent_workers
        self.in_order, self.pin_memory, self.pin_memory_device = in_order, pin_memory, pin_memory_device
        self.multiprocessing_context = _context(multiprocessing_context, num_workers)
        self._auto_collation = batch_sampler is not None
        self.collate_fn = collate_fn or (default_collate if self._auto_collation else default_convert)
        self._fetcher_class = _IterableFetcher if iterable else _MapFetcher
        self._pin = bool(pin_memory) and backend.is_cuda_available()
        if pin_memory and not self._pin:
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then device pinned "
                          "memory won't be used.")
        self._iterator = None
        self._initialized = True

    def __setattr__(self, name, value):
        if getattr(self, "_initialized", False) and name in self._FIXED:
            raise ValueError(f"{name} attribute should not be set after {type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _base_seed(self):
        rng = self.generator if self.generator is not None else backend.default_generator()
        return int(rng.integers(2**63))

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if not self.persistent_workers:
            return _MultiProcessIter(self)
        if self._iterator is None or self._iterator._shut:
            super().__setattr__("_iterator", _MultiProcessIter(self))
        else:
            self._iterator._reset()
        return self._iterator

    def __len__(self):
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self._index_sampler)


def _context(context, num_workers):
    if context is None:
        return None
    if num_workers == 0:
        raise ValueError(f"multiprocessing_context can only be used with multi-process loading (num_workers > 0), "
                         f"but got num_workers={num_workers}")
    if isinstance(context, str):
        methods = multiprocessing.get_all_start_methods()
        if context not in methods:
            raise ValueError(f"multiprocessing_context option should specify a valid start method in {methods!r}, "
                             f"but got multiprocessing_context={context!r}")
        return multiprocessing.get_context(context)
    if not isinstance(context, multiprocessing.context.BaseContext):
        raise TypeError(f"multiprocessing_context option should be a valid context object or a string specifying "
                        f"the start method, but got multiprocessing_context={context!r}")
    return context
