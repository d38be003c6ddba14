"""``tinyres.summary(model, input_size)``: a torchinfo-like table of a model's layers.

One forward pass (batch of 1, eval mode, no graph) records each leaf layer's output
shape; parameters and multiply-accumulates (MACs) are counted per layer, each layer
saying its own with ``Module.count_macs`` (a convolution does ``C_in / groups * kH * kW``
for each output element, a linear layer ``in_features``; layers that do not override it
count none).
"""
from ..core.grad_mode import no_grad
from ..core.tensor import zeros


class ModelSummary:
    """Rows of (name, layer type, output shape, parameters, MACs) and the totals."""

    def __init__(self, rows, input_size, total_params, trainable_params):
        self.rows = rows
        self.input_size = input_size
        self.total_params = total_params
        self.trainable_params = trainable_params
        self.total_macs = sum(r[4] for r in rows)

    def __str__(self):
        head = ("Layer (type)", "Output shape", "Param #", "Mult-adds")
        body = [(f"{name} ({kind})", str(list(shape)), f"{params:,}", f"{macs:,}")
                for name, kind, shape, params, macs in self.rows]
        widths = [max(len(r[i]) for r in [head] + body) for i in range(4)]
        line = "=" * (sum(widths) + 6)
        fmt = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}"
        out = [line, fmt(head), line] + [fmt(r) for r in body] + [line]
        out += [f"Input size: {list(self.input_size)}",
                f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.total_params - self.trainable_params:,}",
                f"Total mult-adds: {self.total_macs / 1e9:.2f} G ({self.total_macs:,})", line]
        return "\n".join(out)

    __repr__ = __str__


def summary(model, input_size, device=None, dtype=None):
    """Run ``model`` on zeros of ``input_size`` (with or without the batch axis) and tabulate it."""
    input_size = tuple(input_size)
    if len(input_size) == 3:
        input_size = (1,) + input_size
    rows, leaves = [], [(n, m) for n, m in model.named_modules() if not list(m.children())]
    p = next(iter(model.parameters()), None)
    x = zeros(*input_size, dtype=dtype or (p.dtype if p is not None else None),
              device=device or (p.device if p is not None else None))

    def recorder(name, module, forward):
        def record(*args, **kwargs):
            out = forward(*args, **kwargs)
            params = sum(q.numel() for q in module.parameters(recurse=False))
            rows.append((name, type(module).__name__, out.shape, params, module.count_macs(out.shape)))
            return out
        return record

    was_training = model.training
    model.eval()
    try:
        for name, m in leaves:
            vars(m)["forward"] = recorder(name, m, m.forward)
        with no_grad():
            model(x)
    finally:
        for _, m in leaves:
            vars(m).pop("forward", None)
        model.train(was_training)
    total = sum(q.numel() for q in model.parameters())
    trainable = sum(q.numel() for q in model.parameters() if q.requires_grad)
    return ModelSummary(rows, input_size, total, trainable)
