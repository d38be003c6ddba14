"""Flat buffers: a parameter group updated by one kernel on a GPU (``foreach``).

An optimizer step that launches one kernel per parameter costs a ResNet-20 some 60
launches of 10-20 us of host time each, for work the GPU does in microseconds.  Kept in
flat buffers, the group's parameters, their gradients and the optimizer's state arrays
are *views* into one flat array each::

    flat data   [ conv1.weight | bn1.weight | bn1.bias | ... | fc.bias ]
    flat grad   [ ...the same offsets... ]            (backward writes each .grad there)
    flat state  [ ...the same offsets... ]            (momentum_buffer, exp_avg, ...)

and the update, being elementwise, runs once over the flat arrays: the same kernel with
the same arithmetic per element as one launch per parameter, so the results agree bit
for bit.  A parameter's gradient lands in the flat buffer directly: the engine's first
write of a leaf's ``.grad`` (a copy it makes anyway) goes into the slot the layout gave
it (``Tensor._grad_slot``), so the flat gradient costs no extra launch.  The ``.grad`` of
a parameter is then a view that the next backward overwrites, as with torch's
``DistributedDataParallel(gradient_as_bucket_view=True)``: copy a gradient to keep it.

The layout is a cache, checked at every step on the host by identity alone (no device
work): a parameter whose data is no longer its view (``model.to()``, ``p.array = ...``),
a state array replaced (``load_state_dict``) or a different set of parameters with
gradients makes the step build the layout again, copying the current values in, and a
gradient that is not in its slot (accumulated over two backwards, or set by hand) is
copied into it.  Nothing done to the tensors is lost.
"""
from ..core.backend import get_array_module


class FlatLayout:
    """``params`` (of one dtype, on one GPU) as views into flat arrays: ``data``, ``grad``
    and ``state[name]`` for each name in ``names`` (zero-filled where no parameter had it:
    ``new`` lists those names, so that the optimizer knows it is their first step)."""

    def __init__(self, params, states, names):
        xp = get_array_module(params[0].array)
        dtype = params[0].array.dtype
        self.params, spans, start = list(params), [], 0
        for p in self.params:
            spans.append((start, start + p.array.size, p.array.shape))
            start += p.array.size

        def views(flat):
            return [flat[a:b].reshape(shape) for a, b, shape in spans]
        self.array, self.grad = xp.empty(start, dtype), xp.empty(start, dtype)
        self.data_views, self.grad_views = views(self.array), views(self.grad)
        for p, data, grad in zip(self.params, self.data_views, self.grad_views):
            data[...] = p.array
            p.array, p._grad_slot = data, (data, grad)      # the slot is valid while p.array is this view
        self.state, self.state_views = {}, {}
        self.new = [name for name in names if name not in states[self.params[0]]]
        for name in names:
            self.state[name] = xp.zeros(start, dtype) if name in self.new else xp.empty(start, dtype)
            self.state_views[name] = views(self.state[name])
            for p, view in zip(self.params, self.state_views[name]):
                if name not in self.new:
                    view[...] = states[p][name]
                states[p][name] = view

    def holds(self, params, states, names):
        """Whether the layout is still true of ``params`` (those with gradients this step) and
        the state ``names``."""
        if (list(self.state_views) != list(names) or len(params) != len(self.params)
                or any(p is not q for p, q in zip(params, self.params))):
            return False
        return all(p.array is data and all(states[p].get(name) is views[k] for name, views in self.state_views.items())
                   for k, (p, data) in enumerate(zip(params, self.data_views)))

    def gather_grads(self):
        """Copy into the flat gradient each ``.grad`` that is not already its view."""
        for p, view in zip(self.params, self.grad_views):
            if p.grad.array is not view:
                view[...] = p.grad.array


def can_flatten(params):
    """Whether ``params`` can share one layout: two or more, of one dtype, contiguous."""
    return (len(params) > 1 and len({p.array.dtype for p in params}) == 1
            and all(p.array.flags.c_contiguous for p in params))
