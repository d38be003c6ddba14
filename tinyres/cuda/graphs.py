"""CUDA graphs: a training step captured once, then replayed with a few launches.

On a GPU each array operation costs 10-20 us of host time to launch, and a ResNet-20 step
makes some 600 of them (docs/performance.md): the GPU waits for Python.  A CUDA graph
records the kernels of one step once -- each kernel with its arguments and the device
memory it reads and writes -- and a replay launches them all again from one call, with no
Python in between.  The names are torch.cuda's::

    g = tinyres.cuda.CUDAGraph()
    with tinyres.cuda.graph(g):            # the capture: nothing runs
        loss = step(static_x, static_y)
    static_x.array[...] = x.array            # each batch into the same memory
    g.replay()                             # the step runs; loss holds its value

``make_graphed_step`` does the warm-up, the capture and the copying in for a whole step.

What a capture needs, and how tinyres meets it:

* Fixed memory.  A graph reads and writes the addresses it captured: inputs are copied
  into static tensors before a replay, and the outputs (the loss) are the tensors the
  capture returned, overwritten by every replay.  Memory the capture allocates comes from
  the graph's own pool (``pool()``), which lives as long as the graph.
* No host in the loop.  A capture records work without running it, so reading a value
  (``.item()``, ``float(loss)``), a synchronisation, a copy of host data or CuPy's legacy
  random numbers cannot be in it (the CuPy test double refuses each, naming it).  A
  tinyres training step has none: the backward's seed and the ops' scalars are made on
  the device, the optimizers read their learning rate from device memory, and dropout
  draws from a Philox kernel whose counter is advanced on the device (each replay draws
  new masks).
* Warm-up.  What a first step makes (momentum buffers, Adam's moments, compiled kernels)
  is made before the capture, by ordinary steps.
* Matrix products.  Stock CuPy cannot capture cuBLAS (cupy#6290), so the graph is captured
  in pieces: at each product (``backend.matmul``) the piece so far ends, the product is
  run outside any graph -- once at capture time to allocate its output, then at every
  replay -- and the next piece begins.  A replay is ``launches`` host calls (pieces and
  products), not one per kernel.
* Host bookkeeping.  An optimizer's host state follows the device's: the capture does not
  count as a step, each replay does (Adam's step counts), and a learning rate changed by a
  schedule is written to the device before the next replay.  Any other option changed
  after the capture is refused at the replay.
"""
import contextlib

from ..core import backend
from ..core.tensor import Tensor


class CUDAGraph:
    """``torch.cuda.CUDAGraph``: ``capture_begin`` / ``capture_end`` (or ``tinyres.cuda.graph``)
    record, ``replay`` runs, ``reset`` forgets, ``pool()`` is the memory pool the capture
    allocated from (give it to another capture to share it)."""

    def __init__(self):
        self._pieces, self._watchers = [], []     # callables of the stream; objects to tell
        self._stream = self._allocation = self._pool = None

    @property
    def launches(self):
        """Host calls per replay: the pieces of graph and the matrix products between them."""
        return len(self._pieces)

    def pool(self):
        """The memory pool the capture allocated from.  The graph reads and writes that memory
        at every replay: do not ``free_all_blocks()`` it while the graph (or one sharing the
        pool) may still be replayed."""
        return self._pool

    def capture_begin(self, pool=None):
        cp = backend.xp_for("cuda")
        if backend.is_capturing():
            raise RuntimeError("CUDAGraph.capture_begin: another graph is being captured; end it first")
        stream = cp.cuda.get_current_stream()
        if stream.ptr in (0, 1):             # cudaStreamLegacy is the null stream, or named 1
            raise RuntimeError("CUDAGraph.capture_begin: the current stream is the legacy default stream, which "
                               "cannot be captured; capture under `with tinyres.cuda.graph(g):` (it makes a stream)")
        self.reset()
        stream.begin_capture()
        self._stream, self._pool = stream, pool if pool is not None else cp.cuda.MemoryPool()
        self._allocate_privately()
        backend.set_capture(self)

    def capture_end(self):
        if backend._capture is not self:
            raise RuntimeError("CUDAGraph.capture_end: this graph is not capturing")
        try:
            piece = self._stream.end_capture().launch
        except BaseException:
            self._abandon()
            raise
        backend.set_capture(None)
        self._stop_allocating_privately()
        self._pieces.append(piece)
        for watcher in self._watchers:
            watcher._graph_captured()

    def replay(self):
        if not self._pieces:
            raise RuntimeError("CUDAGraph.replay: nothing was captured: capture first (tinyres.cuda.graph)")
        if backend.is_capturing():
            raise RuntimeError("CUDAGraph.replay: called inside a capture")
        for watcher in self._watchers:
            watcher._graph_before_replay()
        stream = backend.xp_for("cuda").cuda.get_current_stream()
        for piece in self._pieces:
            piece(stream)
        for watcher in self._watchers:
            watcher._graph_after_replay()

    def reset(self):
        self._pieces, self._watchers, self._pool = [], [], None

    # ------------------------------------------------------------------ what backend asks of a capture
    def gemm(self, a, b, out=None):
        """``a @ b`` met while capturing: the piece so far ends, the product is run now (for its
        output's memory; its inputs hold no values yet) and at every replay, a new piece begins."""
        cp = backend.xp_for("cuda")
        out = self.outside(lambda: cp.matmul(a, b) if out is None else out, private=True)
        self._pieces.append(lambda stream: cp.matmul(a, b, out=out))
        return out

    def outside(self, fn, private=False):
        """``fn()`` run now, between two pieces of the graph, and never replayed; its memory from
        the graph's pool when ``private`` (it lives as long as the graph), else from CuPy's."""
        self._pieces.append(self._stream.end_capture().launch)
        if not private:
            self._stop_allocating_privately()
        try:
            return fn()
        finally:
            if not private:
                self._allocate_privately()
            self._stream.begin_capture()

    def watch(self, obj):
        if all(w is not obj for w in self._watchers):
            self._watchers.append(obj)

    def _allocate_privately(self):
        self._allocation = backend.xp_for("cuda").cuda.using_allocator(self._pool.malloc)
        self._allocation.__enter__()

    def _stop_allocating_privately(self):
        if self._allocation is not None:
            self._allocation.__exit__(None, None, None)
            self._allocation = None

    def _abandon(self):
        """A capture that raised: end it, keep nothing, and tell the watchers (an optimizer
        takes back the steps the capture counted but never ran)."""
        backend.set_capture(None)
        try:
            if self._stream is not None and self._stream.is_capturing():
                with contextlib.suppress(Exception):     # the error that brought us here is the one to see
                    self._stream.end_capture()
        finally:
            self._stop_allocating_privately()
            for watcher in self._watchers:
                watcher._graph_abandoned()
            self.reset()


@contextlib.contextmanager
def graph(cuda_graph, pool=None, stream=None):
    """``torch.cuda.graph``: capture the work of the ``with`` block into ``cuda_graph``, on
    ``stream`` (a new non-blocking stream by default: the default stream cannot be captured).
    Nothing in the block runs; ``cuda_graph.replay()`` runs it."""
    cp = backend.xp_for("cuda")
    caller = cp.cuda.get_current_stream()
    stream = stream if stream is not None else cp.cuda.Stream(non_blocking=True)
    stream.wait_event(caller.record())        # the capture comes after the caller's work so far
    with stream:
        cuda_graph.capture_begin(pool)
        try:
            yield cuda_graph
        except BaseException:
            cuda_graph._abandon()
            raise
        cuda_graph.capture_end()             # abandons the capture itself when it fails
    caller.wait_event(stream.record())


def make_graphed_step(step, *static_inputs, warmup=3):
    """``step(*static_inputs)`` -- a whole training step (forward, loss, backward, the
    optimizer's step) -- as a function of the batch that replays a CUDA graph of it.

    Each call copies its arguments into ``static_inputs`` (same shapes, dtypes and device)
    and does one step: the first ``warmup`` calls run ``step`` as it is (they make the
    optimizers' buffers), the next captures it and replays the capture, the later ones
    replay.  It returns what ``step`` returned: from the capture on, the same tensors,
    overwritten by every call (read ``loss.item()`` before the next).  Schedules may change
    the learning rate between calls; the number of steps an optimizer has taken counts
    every call.
    """
    return GraphedStep(step, static_inputs, warmup)


class GraphedStep:
    """What ``make_graphed_step`` returns: call it with a batch; ``graph`` is its CUDAGraph
    (None until the capture), ``calls`` the steps it has taken."""

    def __init__(self, step, static_inputs, warmup=3):
        for k, t in enumerate(static_inputs):
            if not isinstance(t, Tensor) or t.device.type != "cuda":
                raise TypeError(f"make_graphed_step: static input {k} must be a Tensor on a cuda device, got "
                                f"{t.device if isinstance(t, Tensor) else type(t).__name__}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"make_graphed_step: warmup must be an int >= 0, got {warmup!r}")
        self.step, self.static_inputs, self.warmup = step, static_inputs, warmup
        self.graph, self.outputs, self.calls = None, None, 0

    def __call__(self, *inputs):
        if len(inputs) != len(self.static_inputs):
            raise TypeError(f"graphed step: expected {len(self.static_inputs)} inputs, as its static inputs, "
                            f"got {len(inputs)}")
        for k, (static, new) in enumerate(zip(self.static_inputs, inputs)):
            if not isinstance(new, Tensor) or (new.shape, new.dtype, new.device) != (static.shape, static.dtype,
                                                                                      static.device):
                got = (f"{tuple(new.shape)}, {new.dtype}, {new.device}" if isinstance(new, Tensor)
                       else type(new).__name__)
                raise ValueError(f"graphed step: input {k} must be like its static input ({tuple(static.shape)}, "
                                 f"{static.dtype}, {static.device}), got {got}: a graph replays on fixed memory "
                                 "(drop or pad a short last batch: DataLoader(drop_last=True))")
            if new is not static:
                static.array[...] = new.array       # a device-to-device copy into the captured memory
        if self.calls < self.warmup:
            outputs = self.step(*self.static_inputs)
        else:
            if self.graph is None:            # a capture that raises leaves None: the next call tries again
                captured = CUDAGraph()
                with graph(captured):
                    outputs = self.step(*self.static_inputs)
                self.graph, self.outputs = captured, outputs
            self.graph.replay()
            outputs = self.outputs
        self.calls += 1
        return outputs
