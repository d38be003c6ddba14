"""The state_dict protocol of torch.nn.Module, checked by running the same code on tinyres
and on torch: ``_save_to_state_dict`` / ``_load_from_state_dict`` (what a module overrides
to convert an old layout), the state_dict and load_state_dict hooks, extra state,
``_metadata`` and ``load_state_dict(assign=True)``."""
import numpy as np
import pytest
from helpers import needs_torch, torch  # torch: None without PyTorch

import tinyres

pytestmark = needs_torch
LIBS = ["tinyres", "torch"]


def lib(name):
    return tinyres if name == "tinyres" else torch


def net(root):
    nn = root.nn
    return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Sequential(nn.Flatten(), nn.Linear(3, 2)))


def both(fn):
    """``fn(root)`` on tinyres and on torch: the two results."""
    return fn(tinyres), fn(torch)


def test_metadata_holds_each_modules_version():
    ours, theirs = both(lambda root: net(root).double().state_dict()._metadata)
    assert ours == theirs


def test_state_dict_hooks_run_in_torchs_order_with_its_arguments():
    def run(root):
        model, calls = net(root), []
        for prefix, module in [("", model), ("2.", model[2]), ("2.1.", model[2][1])]:
            module.register_state_dict_pre_hook(lambda m, p, keep, n=prefix: calls.append(("pre", n, p, keep)))
            module.register_state_dict_post_hook(
                lambda m, sd, p, meta, n=prefix: calls.append(("post", n, p, len(sd), meta["version"])))
        model.state_dict(keep_vars=True)
        return calls
    ours, theirs = both(run)
    assert ours == theirs


def test_a_post_hook_edits_in_place_and_the_private_one_may_replace():
    def run(root):
        model = root.nn.Linear(2, 2)
        model.register_state_dict_post_hook(lambda m, sd, p, meta: sd.__delitem__(p + "bias"))
        keys = list(model.state_dict())
        other = root.nn.Linear(2, 2)
        other._register_state_dict_hook(lambda m, sd, p, meta: {"only": sd[p + "weight"]})
        bad = root.nn.Linear(2, 2)
        bad.register_state_dict_post_hook(lambda m, sd, p, meta: {})
        with pytest.raises(RuntimeError):
            bad.state_dict()
        return keys, list(other.state_dict())
    ours, theirs = both(run)
    assert ours == theirs == (["weight"], ["only"])


def make_counter(root):
    class Counter(root.nn.Module):
        """A module with extra (non-tensor) state."""

        def __init__(self):
            super().__init__()
            self.lin = root.nn.Linear(2, 1)
            self.steps = 0

        def get_extra_state(self):
            return {"steps": self.steps}

        def set_extra_state(self, state):
            self.steps = state["steps"]
    return Counter


def test_extra_state_is_saved_and_loaded_in_torchs_place():
    def run(root):
        Counter = make_counter(root)
        model = root.nn.Sequential(Counter(), root.nn.ReLU())
        model[0].steps = 7
        state = model.state_dict()
        fresh = root.nn.Sequential(Counter(), root.nn.ReLU())
        fresh.load_state_dict(state)
        del state["0._extra_state"]
        with pytest.raises(RuntimeError, match="Missing key") as missing:
            fresh.load_state_dict(state)
        return list(model.state_dict()), fresh[0].steps, "0._extra_state" in str(missing.value)
    ours, theirs = both(run)
    assert ours == theirs == (["0._extra_state", "0.lin.weight", "0.lin.bias"], 7, True)  # before the children


def test_a_load_pre_hook_converts_an_old_layout():
    """An old checkpoint named the layer's weight ``w``: a pre-hook renames it, with the
    arguments torch gives (prefix, the module's metadata, strict)."""
    def run(root):
        model, seen = net(root).double(), []
        old = {k.replace("2.1.weight", "2.1.w"): v for k, v in net(root).double().state_dict().items()}
        old = type(model.state_dict())(old)

        def rename(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
            seen.append((type(module).__name__, prefix, local_metadata.get("version"), strict))
            if prefix + "w" in state_dict:
                state_dict[prefix + "weight"] = state_dict.pop(prefix + "w")
        model[2][1].register_load_state_dict_pre_hook(rename)
        model._register_load_state_dict_pre_hook(lambda sd, prefix, *rest: seen.append(("root", prefix)))
        result = model.load_state_dict(old)
        np.testing.assert_array_equal(np.asarray(model[2][1].weight.detach().numpy()), old["2.1.w"].numpy())
        return seen, (list(result.missing_keys), list(result.unexpected_keys)), "2.1.w" in old
    ours, theirs = both(run)
    assert ours == theirs


def test_a_load_post_hook_sees_and_edits_the_incompatible_keys():
    def run(root):
        model, seen = net(root), []

        def forgive(module, incompatible):
            seen.append((list(incompatible.missing_keys), list(incompatible.unexpected_keys)))
            incompatible.missing_keys.clear()
            incompatible.unexpected_keys.clear()
        model[2].register_load_state_dict_post_hook(forgive)
        state = net(root).state_dict()
        del state["2.1.bias"]
        state["2.extra"] = root.zeros(1)
        model.load_state_dict(state)                        # strict: forgiven by the hook
        bad = root.nn.Linear(2, 2)
        bad.register_load_state_dict_post_hook(lambda m, keys: 1)
        with pytest.raises(AssertionError):
            bad.load_state_dict(root.nn.Linear(2, 2).state_dict())
        return seen
    ours, theirs = both(run)
    assert ours == theirs


def test_an_overridden_load_from_state_dict_converts_and_calls_super():
    """The pattern of old torch code (BatchNorm's own version handling is one): look at
    ``local_metadata``, fix ``state_dict``, call super."""
    def run(root):
        class Scaled(root.nn.Linear):
            def _load_from_state_dict(self, state_dict, prefix, local_metadata, *rest):
                if prefix + "weight_t" in state_dict:                   # an old layout: transposed
                    state_dict[prefix + "weight"] = state_dict.pop(prefix + "weight_t").t()
                super()._load_from_state_dict(state_dict, prefix, local_metadata, *rest)
        model = root.nn.Sequential(Scaled(3, 2))
        model[0].load_state_dict({"weight_t": root.ones(3, 2) * 2, "bias": root.zeros(2)})
        out = model.load_state_dict({"0.weight_t": root.ones(3, 2) * 3, "0.bias": root.ones(2)})
        return model[0].weight.detach().numpy().tolist(), model[0].bias.detach().numpy().tolist(), len(out[0])
    ours, theirs = both(run)
    assert ours == theirs


@pytest.mark.parametrize("name", LIBS)
def test_assign_takes_the_given_tensors(name):
    root = lib(name)
    model = root.nn.Sequential(root.nn.Linear(2, 2), root.nn.BatchNorm1d(2))
    model[0].weight.requires_grad_(False)
    state = {k: v.clone().double() for k, v in model.state_dict().items()}
    model.load_state_dict(state, assign=True)
    weight, mean = model[0].weight, model[1].running_mean
    assert isinstance(weight, root.nn.Parameter) and not weight.requires_grad and model[0].bias.requires_grad
    assert weight.dtype == root.float64 and mean is state["1.running_mean"]
    state["0.weight"][0, 0] = 5.0                         # the module shares the given tensor's memory
    assert weight[0, 0].item() == 5.0
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_nothing_is_copied_when_one_value_does_not_fit_and_bad_input_is_refused():
    model = net(tinyres)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    state = net(tinyres).state_dict()
    state["2.1.weight"] = tinyres.zeros(5, 5)
    with pytest.raises(RuntimeError, match="size mismatch for 2.1.weight"):
        model.load_state_dict(state)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    for root in (tinyres, torch):
        with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
            root.nn.Linear(2, 2).load_state_dict([1, 2])
    with pytest.raises(TypeError, match="register_state_dict_pre_hook"):
        tinyres.nn.Linear(2, 2).register_state_dict_pre_hook(3)


def test_load_from_state_dict_on_its_own_copies_at_once():
    layer = tinyres.nn.Linear(2, 2)
    missing, unexpected, errors = [], [], []
    layer._load_from_state_dict({"p.weight": tinyres.ones(2, 2), "p.other": 1}, "p.", {}, True,
                                missing, unexpected, errors)
    assert layer.weight.numpy().tolist() == [[1, 1], [1, 1]]
    assert (missing, unexpected, errors) == (["p.bias"], ["p.other"], [])


@pytest.mark.parametrize("name", LIBS)
def test_hooks_are_removed_by_their_handles(name):
    root = lib(name)
    layer, calls = root.nn.Linear(2, 2), []
    handles = [layer.register_state_dict_pre_hook(lambda *a: calls.append(1)),
               layer.register_load_state_dict_pre_hook(lambda *a: calls.append(2)),
               layer.register_load_state_dict_post_hook(lambda *a: calls.append(3))]
    layer.load_state_dict(layer.state_dict())
    for h in handles:
        h.remove()
    layer.load_state_dict(layer.state_dict())
    assert calls == [1, 2, 3]
