"""``Optimizer``: the base class that owns parameter groups, per-parameter state and
(de)serialisation; subclasses only say how one parameter is updated.

A parameter is any leaf Tensor.  ``step()`` visits every parameter whose ``.grad`` is not
None and hands its arrays to ``_update`` of the subclass, which changes ``p.array`` in
place: the parameter objects, and their arrays, stay the same for the whole of training.
State arrays (momentum buffers, Adam moments) live on the parameter's device with its
dtype.

On a GPU the learning rate (and Adam's step count) reach the kernels as 0-d device arrays,
set only when the host value changes (``_device_scalar``), so that a CUDA graph which
captured a step replays it with the schedule's current rate (``tinyres.cuda.graphs``).

``state_dict()`` is torch's format with host copies: ``{"state": {index: {name: ndarray
or number}}, "param_groups": [{option: value, ..., "params": [index, ...]}]}``, where a
parameter's index is its position in the concatenation of all groups.
"""
import collections
import copy
import math
import numbers
import warnings

from ..core import grad_mode
from ..core import backend
from ..core.tensor import Tensor
from . import flat


class Optimizer:
    """Base class of all optimizers.

    ``params`` is an iterable of Tensors, or of dicts (parameter groups) that hold
    ``"params"`` and any options that override ``defaults`` for that group, e.g.
    ``[{"params": weights}, {"params": biases, "weight_decay": 0}]``.
    """

    def __init__(self, params, defaults):
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}")
        self.defaults = dict(defaults)
        self._check_options(self.defaults)
        self.state = collections.defaultdict(dict)
        self.param_groups = []
        self._opt_called = False    # set by step(); lr schedulers warn when they step first
        self._on_device = {}        # key -> (device array, the host value it holds)
        self._graphed = None        # what a CUDA-graph capture of step() recorded
        self._flat = {}             # id(group) -> its FlatLayout (a GPU with foreach)
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ hooks for subclasses
    @staticmethod
    def _check_options(options):
        """Raise ValueError for an invalid option value (of the defaults or of a group).
        Subclasses extend this; the base checks the learning rate."""
        if "lr" in options:
            check_number("learning rate", options["lr"])
        if options.get("foreach") not in (None, True, False):
            raise ValueError(f"foreach must be None, True or False, got {options['foreach']!r}")

    def _update(self, p, grad, state, group):
        """Update ``p.array`` in place from its gradient array ``grad``; ``state`` is the
        parameter's state dict (empty before its first step), ``group`` its options."""
        raise NotImplementedError

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group):
        """Add a group of parameters, with options that override the defaults."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        group["params"] = params = list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_options(group)
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "each is updated once per occurrence", stacklevel=3)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        devices = sorted({str(p.device) for g in self.param_groups + [group] for p in g["params"]})
        if len(devices) > 1:
            raise ValueError(f"{type(self).__name__}: parameters on {' and '.join(devices)}; an optimizer "
                             "steps the parameters of one device: move the model first (model.to(device)), "
                             "then make the optimizer, or make one optimizer per device")
        self.param_groups.append(group)

    # ------------------------------------------------------------------ training
    def zero_grad(self, set_to_none=True):
        """Forget the gradients: set them to None (default) or fill them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def step(self, closure=None):
        """Update every parameter that has a gradient; parameters whose ``.grad`` is None
        are skipped (their state is untouched).  ``closure``, when given, re-evaluates
        the model (with grad enabled) and its return value (the loss) is returned."""
        loss = None
        if closure is not None:
            with grad_mode.enable_grad():
                loss = closure()
        stepped = self._graph_record() if backend.is_capturing() else []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            with backend.on_device(backend.device_of(params[0].array)):
                if not self._step_flat(params, group):
                    for p in params:
                        self._update(p, p.grad.array, self.state[p], group)
            for p in params:                 # written in place: a graph that saved p sees it (torch)
                p._version_counter[0] += 1
            stepped.extend(params)
        self._opt_called = True
        return loss

    # ------------------------------------------------------------------ one kernel per group (GPU)
    def _flat_state_names(self, group):
        """The state arrays of ``group`` a subclass keeps in flat buffers; None: no flat path."""
        return None

    def _step_flat(self, params, group):
        """On a GPU with ``foreach`` (not False): the group's update as one kernel over flat
        buffers (optim/flat.py), through ``_update_flat``.  False where it cannot be (on the
        CPU, one parameter, mixed dtypes, some parameters with a state array and some without)."""
        names = self._flat_state_names(group)
        if (names is None or group.get("foreach") is False
                or backend.is_cpu(backend.get_array_module(params[0].array)) or not flat.can_flatten(params)):
            return False
        layout = self._flat.get(id(group))
        if layout is None or not layout.holds(params, self.state, names):
            if len({tuple(n in self.state[p] for n in names) for p in params}) > 1 or not self._flat_ready(params):
                return False
            if backend.is_capturing():
                raise RuntimeError(f"{type(self).__name__}: the flat buffers of a parameter group are made at its "
                                   "first step (and again when its parameters change), which a CUDA graph cannot "
                                   "capture: run warm-up steps before the capture")
            layout = self._flat[id(group)] = flat.FlatLayout(params, self.state, names)
        layout.gather_grads()
        self._update_flat(layout, group)
        layout.new = []             # the state arrays made zero by the layout have had their first step
        return True

    def _flat_ready(self, params):
        """Whether ``params`` are in step for one kernel (Adam: the same step count)."""
        return True

    def _update_flat(self, layout, group):
        """The group's update over ``layout.array``, ``layout.grad`` and ``layout.state`` (its
        arrays named in ``layout.new`` are zeros, at their first step)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ on the device, CUDA graphs
    def _device_scalar(self, key, value):
        """A 0-d float64 array on the current GPU holding ``value``, kept under ``key``: set
        (outside any graph being captured) only when ``value`` differs from what it holds."""
        entry = self._on_device.get(key)
        if entry is None or entry[1] != value:
            def fill():
                array = entry[0] if entry is not None else backend.xp_for("cuda").empty((), backend.float64)
                array.fill(value)
                return array
            self._on_device[key] = (backend.outside_capture(fill), value)
        return self._on_device[key][0]

    def _device_counter(self, key, count):
        """A device counter that this step brings from ``count - 1`` to ``count``: one
        increment on the device (which a captured graph repeats at every replay)."""
        array = self._device_scalar(key, count - 1)
        array += 1
        self._on_device[key] = (array, count)
        if backend.is_capturing():
            self._graphed["counters"].append(key)
        return array

    def _count_steps(self, p, state, delta):
        """Move the host's step count of ``p`` by ``delta`` (the subclasses that count steps)."""

    def _count_all(self, delta):
        """A capture's steps taken back (``delta`` -1) or a replay's counted (+1): the host's
        counts and the values the device counters are known to hold."""
        for p in self._graphed["params"]:
            self._count_steps(p, self.state[p], delta)
        for key in self._graphed["counters"]:
            array, count = self._on_device[key]
            self._on_device[key] = (array, count + delta)

    def _options(self):
        """Each group's options but the learning rate: baked into a captured graph."""
        return [{k: copy.deepcopy(g[k]) for k in self.defaults if k != "lr"} for g in self.param_groups]

    def _graph_record(self):
        """A step inside a capture: the list to which it adds the parameters it steps (one
        capture may hold several steps; a parameter stepped twice is listed twice)."""
        capture = backend.capture_watch(self)
        if self._graphed is None or self._graphed["capture"] is not capture:
            self._graphed = dict(capture=capture, params=[], counters=[], options=self._options())
        return self._graphed["params"]

    def _graph_captured(self):
        """The capture recorded its steps without running them: take back their step counts."""
        self._count_all(-1)

    def _graph_abandoned(self):
        """A capture that failed: the same, and nothing is left to replay."""
        self._graph_captured()
        self._graphed = None

    def _graph_before_replay(self):
        """Set the device learning rates from the groups' (a schedule may have changed them);
        refuse when another option changed, since the graph replays the captured one."""
        name = type(self).__name__
        if self._graphed is None:
            raise RuntimeError(f"{name}: load_state_dict() since the CUDA graph was captured; the graph still "
                               "updates the old state arrays: capture the step again")
        if len(self._graphed["options"]) != len(self.param_groups):
            raise RuntimeError(f"{name}: {len(self._graphed['options'])} parameter groups when the CUDA graph was "
                               f"captured, {len(self.param_groups)} now; a replay steps the captured ones only: "
                               "capture the step again")
        for before, group, now in zip(self._graphed["options"], self.param_groups, self._options()):
            changed = [f"{k} from {before[k]!r} to {now[k]!r}" for k in before if before[k] != now[k]]
            if changed:
                raise RuntimeError(f"{name}: {', '.join(changed)} since the CUDA graph was captured; "
                                   "a replay reads only the learning rate afresh: capture the step again")
            params = group["params"]
            if params:
                with backend.on_device(backend.device_of(params[0].array)):
                    self._device_scalar(("lr", id(group)), float(group["lr"]))

    def _graph_after_replay(self):
        self._count_all(+1)

    # ------------------------------------------------------------------ (de)serialisation
    def state_dict(self):
        """The optimizer's state, with NumPy copies of every array (see the module doc)."""
        index, start = {}, 0
        groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {index[id(p)]: {k: _to_host(v) for k, v in s.items()}
                 for p, s in self.state.items() if s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a ``state_dict()`` (tinyres's, or torch's: Tensors as ``tinyres.load`` of a
        ``.pth`` gives them, a 0-d ``step``): arrays are copied onto each parameter's device
        and cast to its dtype; group options (lr, betas, ...) replace the current ones."""
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        sizes = [len(g["params"]) for g in self.param_groups]
        if sizes != [len(s["params"]) for s in saved_groups]:
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        params = {i: p for g, s in zip(self.param_groups, saved_groups)
                  for i, p in zip(s["params"], g["params"])}
        unknown = set(state_dict["state"]) - set(params)
        if unknown:
            raise ValueError(f"loaded state dict has state for parameter indices {sorted(unknown)}, "
                             "which are in none of its parameter groups")
        state = collections.defaultdict(dict)
        for i, saved in state_dict["state"].items():
            state[params[i]] = {k: _to_param(k, v, params[i]) for k, v in saved.items() if v is not None}
        for group, saved in zip(self.param_groups, saved_groups):
            saved["params"] = group["params"]
            for name, default in self.defaults.items():    # options newer than the checkpoint
                saved.setdefault(name, default)
        self.state, self.param_groups = state, saved_groups
        self._on_device.clear()
        self._flat.clear()          # the state arrays are new: the next step lays them out again
        self._graphed = None        # a captured graph holds the old arrays: its replay refuses

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"


def _to_host(value):
    """A NumPy copy of an array; other values deep-copied."""
    return backend.to_host(value).copy() if backend.is_array(value) else copy.deepcopy(value)


def _to_param(name, value, p):
    """A saved state value as ``step()`` keeps it: an array (or a Tensor, as ``tinyres.load``
    of a ``.pth`` gives) copied onto ``p``'s device with ``p``'s dtype; torch's 0-d ``step``
    tensor a Python number; other values deep-copied.  (A None, torch's "no momentum buffer
    yet", is left out by the caller.)"""
    if isinstance(value, Tensor):
        value = value.array
    if not backend.is_array(value):
        return copy.deepcopy(value)
    if name == "step" and value.ndim == 0:       # torch keeps the step count as a float32 tensor
        step = float(backend.to_host(value))
        return int(step) if step.is_integer() else step
    device = backend.device_of(p.array)
    with backend.on_device(device):         # the cast runs on the parameter's GPU
        return backend.to_device(value, device).astype(p.array.dtype, copy=True)


def check_number(label, value, high=None):
    """Raise torch's ``ValueError("Invalid <label>: <value>")`` unless ``0 <= value`` (and
    ``value < high`` when ``high`` is given); NaN is invalid, a non-number a TypeError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Invalid {label}: expected a real number, got {value!r}")
    if math.isnan(value) or value < 0 or (high is not None and value >= high):
        raise ValueError(f"Invalid {label}: {value}")
