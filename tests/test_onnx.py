"""tinyres.onnx.export: every model of the registry and every op with an ONNX form, run in
onnxruntime against tinyres in float32 (and against tinyres in float64, the truth both
round), the initializers' names, dynamic batch, and the errors."""
import io
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import tinyres
from tinyres import nn
from tinyres.nn import functional as F
from tinyres.onnx import ExportError


def run(path_or_proto, *inputs, names=None):
    data = path_or_proto.SerializeToString() if isinstance(path_or_proto, onnx.ModelProto) else str(path_or_proto)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = names or [i.name for i in session.get_inputs()]
    return session.run(None, {n: x.array for n, x in zip(names, inputs)})


def calibrated(model, x):
    """``model`` in eval mode with batch-norm statistics of ``x`` (not the init's 0 and 1)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    with tinyres.no_grad():
        model(x)
    return model.eval()


@pytest.mark.parametrize("name", tinyres.models.list_models())
def test_every_registry_model_exports_and_runs_in_onnxruntime(name, tmp_path):
    tinyres.manual_seed(0)
    x = tinyres.randn(2, 3, 32, 32)
    model = calibrated(tinyres.models.get_model(name), tinyres.randn(8, 3, 32, 32))
    tinyres.onnx.export(model, x, tmp_path / "model.onnx")
    got = run(tmp_path / "model.onnx", x)[0]
    ours = model(x).array
    truth = model.to(tinyres.float64)(x.to(tinyres.float64)).array
    # ONNX Runtime's float32 logits are as close to the float64 ones as tinyres's float32 are:
    # within 1e-5, or, for the deep ImageNet nets at random init, within twice tinyres's own rounding
    ours_error, theirs_error = np.abs(ours - truth).max(), np.abs(got - truth).max()
    assert theirs_error <= max(1e-5, 2 * ours_error), (name, theirs_error, ours_error)
    if ours_error < 1e-6:
        assert np.abs(got - ours).max() < 1e-5


def test_the_bundled_resnet20_matches_on_real_images_within_1e5():
    model = tinyres.models.resnet20(weights="cifar10").eval()
    from tinyres.data import ImageFolder
    folder = ImageFolder(Path(__file__).parent / "data" / "cifar10-sample", size=32, cache=False)
    mean = np.asarray(model.weights_meta["mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(model.weights_meta["std"], np.float32).reshape(1, 3, 1, 1)
    x = tinyres.tensor((folder.get_batch(np.arange(len(folder)))[0] - mean) / std)
    buffer = io.BytesIO()
    tinyres.onnx.export(model, x, buffer)
    got = run(onnx.load_from_string(buffer.getvalue()), x)[0]
    ours = model(x).array
    assert np.abs(got - ours).max() < 1e-5
    assert (got.argmax(1) == ours.argmax(1)).all()


class EveryOp(nn.Module):
    """A model using each op the exporter knows, in odd configurations."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, stride=2, padding=(1, 2), dilation=(1, 2), groups=2, bias=False)
        self.bn = nn.BatchNorm2d(6, affine=False)
        self.fc = nn.Linear(5, 3)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        y = F.leaky_relu(self.bn(self.conv(x)), 0.1)                       # (2, 6, 5, 3)
        y = nn.ReLU(inplace=True)(y * 1.5 - 0.25)
        a = F.max_pool2d(y, 2, stride=1, padding=1, dilation=1, ceil_mode=True)
        b = F.avg_pool2d(y, 3, stride=2, padding=1, count_include_pad=False, ceil_mode=True)
        c = F.adaptive_avg_pool2d(y, (2, 3))
        z = tinyres.cat([c, F.adaptive_avg_pool2d(a, (2, 3)), F.adaptive_avg_pool2d(b, (2, 3))], dim=1)
        z = F.pad(z, (1, 1, 0, 0), value=0.5)[:, :, :, 1:-1][:, 2:, 0]          # (2, 16, 3)
        z = z.permute(0, 2, 1).sigmoid() + z.permute(0, 2, 1).tanh()          # (2, 3, 16)
        z = (z.clamp(0.1, 1.5) ** 2).sqrt().exp().log().abs() / 2 - (-z)
        z = tinyres.maximum(z, z.mean(dim=1, keepdim=True)) @ tinyres.ones(16, 5)
        z = self.fc(self.drop(z))                                              # linear on 3-D
        out = F.softmax(z, dim=-1) + F.log_softmax(z.sum(dim=1), dim=-1)[:, None, ...][..., None, :][:, :, 0]
        return out.reshape(2, -1)


def test_every_op_with_an_onnx_form():
    tinyres.manual_seed(1)
    model = EveryOp()
    model.bn.running_mean.array[...] = np.linspace(-1, 1, 6)
    model.bn.running_var.array[...] = np.linspace(0.5, 2, 6)
    x = tinyres.randn(2, 4, 9, 7)
    proto = tinyres.onnx.export(model, x, io.BytesIO())
    np.testing.assert_allclose(run(proto, x)[0], model.eval()(x).array, atol=1e-5)
    ops = {n.op_type for n in proto.graph.node}
    assert {"Conv", "BatchNormalization", "LeakyRelu", "Relu", "MaxPool", "AveragePool", "MatMul", "Concat", "Pad",
            "Slice", "Squeeze", "Transpose", "Sigmoid", "Tanh", "Clip", "Pow", "Sqrt", "Exp", "Log", "Abs", "Neg",
            "Max", "ReduceMean", "ReduceSum", "Softmax", "LogSoftmax", "Reshape", "Unsqueeze", "Add", "Sub", "Mul", "Div"} <= ops


def test_initializers_carry_the_state_dict_names_and_the_mode_comes_back():
    model = tinyres.models.resnet8()
    model.train()
    proto = tinyres.onnx.export(model, tinyres.randn(1, 3, 32, 32), io.BytesIO(), input_names=["images"],
                                output_names=["logits"])
    names = {i.name for i in proto.graph.initializer}
    assert {"conv1.weight", "bn1.running_mean", "bn1.running_var", "fc.weight", "fc.bias"} <= names
    assert [i.name for i in proto.graph.input] == ["images"] and [o.name for o in proto.graph.output] == ["logits"]
    assert model.training


class Reduces(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3)) + x.sum(dim=1).mean(dim=-1, keepdim=True).mean(dim=1) + x.mean()


@pytest.mark.parametrize("opset", [13, 17, 18, 20])
def test_reductions_in_each_opset(opset):
    """ReduceMean's axes moved from an attribute to an input in opset 18: both forms run."""
    x = tinyres.randn(2, 4, 3, 3)
    proto = tinyres.onnx.export(Reduces(), x, io.BytesIO(), opset_version=opset)
    means = [n for n in proto.graph.node if n.op_type == "ReduceMean"]
    assert means and all((len(n.input) == 2) == (opset >= 18) for n in means)
    np.testing.assert_allclose(run(proto, x)[0], Reduces()(x).array, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [13, 15, 17, 18, 20])
def test_torchs_export_arguments(opset):
    """A torch call as written (opset_version=13, do_constant_folding, export_params) runs;
    without export_params the weights are the graph's inputs and give the same logits."""
    model = calibrated(tinyres.models.resnet8(), tinyres.randn(4, 3, 32, 32))
    x = tinyres.randn(2, 3, 32, 32)
    proto = tinyres.onnx.export(model, x, io.BytesIO(), opset_version=opset, do_constant_folding=True,
                                export_params=True, input_names=["images"], output_names=["logits"])
    assert proto.opset_import[0].version == opset
    np.testing.assert_allclose(run(proto, x)[0], model(x).array, atol=1e-5)
    kept = tinyres.onnx.export(model, x, io.BytesIO(), opset_version=opset, keep_initializers_as_inputs=True)
    assert {i.name for i in kept.graph.initializer} <= {i.name for i in kept.graph.input}
    bare = tinyres.onnx.export(model, x, io.BytesIO(), opset_version=opset, export_params=False)
    assert not set(model.state_dict()) & {i.name for i in bare.graph.initializer}
    weights = {k: v for k, v in model.state_dict().items() if k in {i.name for i in bare.graph.input}}
    assert "conv1.weight" in weights
    session = ort.InferenceSession(bare.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {"input": x.array, **{k: np.ascontiguousarray(tinyres.tensor(v).numpy()) for k, v in weights.items()}}
    np.testing.assert_allclose(session.run(None, feed)[0], model(x).array, atol=1e-5)


def test_dynamic_batch(tmp_path):
    model = calibrated(tinyres.models.resnet8(), tinyres.randn(8, 3, 32, 32))
    path = tmp_path / "dyn.onnx"
    tinyres.onnx.export(model, tinyres.randn(2, 3, 32, 32), path, dynamic_axes={"input": {0: "batch"},
                                                                                 "output": {0: "batch"}})
    x = tinyres.randn(5, 3, 32, 32)
    np.testing.assert_allclose(run(path, x)[0], model(x).array, atol=1e-5)
    static = tinyres.onnx.export(model, tinyres.randn(2, 3, 32, 32), io.BytesIO())
    with pytest.raises(Exception, match="dimension|Got invalid dimensions"):
        run(static, x)


class Flattens(nn.Module):
    def forward(self, x):
        return x.reshape(-1)


class ReadsItsInput(nn.Module):
    def forward(self, x):
        return x * float(x.array.mean())          # a value taken out of the graph


class Constant(nn.Module):
    def forward(self, x):
        return tinyres.ones(2)


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.gn = nn.GroupNorm(2, 4)

    def forward(self, x):
        return self.gn(x)


@pytest.mark.parametrize("model, kwargs, error, match", [
    (ReadsItsInput(), {}, ExportError, "differs for another input"),
    (Flattens(), dict(dynamic_axes={"input": [0]}), ExportError, "mixes the batch axis"),
    (Grouped(), {}, ExportError, "GroupNormFunction has no ONNX form"),
    (nn.BatchNorm2d(4, track_running_stats=False), {}, ExportError, "only evaluation-mode batch norm"),
    (Constant(), {}, ExportError, "not computed from its input"),
    (nn.ReLU(), dict(dynamic_axes={"input": {1: "channels"}}), ValueError, "only axis 0"),
    (nn.ReLU(), dict(opset_version=11), ValueError, "operator sets 13 to 20, got opset_version=11"),
    (nn.ReLU(), dict(input_names=["a", "b"]), ValueError, "2 input_names for 1 inputs"),
])
def test_what_cannot_be_exported_says_why(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        tinyres.onnx.export(model, tinyres.randn(2, 4, 3, 3), io.BytesIO(), **kwargs)
    with pytest.raises(TypeError, match="args must be a Tensor"):
        tinyres.onnx.export(nn.ReLU(), np.zeros((1, 2)), io.BytesIO())


def test_the_file_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    monkeypatch.setattr(onnx.ModelProto, "SerializeToString", lambda self: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(OSError):
        tinyres.onnx.export(nn.ReLU(), tinyres.randn(1, 2), path)
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


class ResidualInPlace(nn.Module):
    """A ResNet block written as torch code often is: ``out += self.shortcut(x)``, then in-place chains."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(6)
        self.conv2, self.bn2 = nn.Conv2d(6, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6)
        self.shortcut = nn.Sequential(nn.Conv2d(4, 6, 1, stride=2, bias=False), nn.BatchNorm2d(6))
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        out = F.relu(out)
        y = out.mean(dim=(2, 3))
        y.mul_(2).add_(1).clamp_(0, 3)
        y -= 0.5
        y *= 1.5
        y /= 2
        y.sub_(0.25).div_(0.75)
        return self.fc(y)


def test_in_place_ops_export_as_the_values_they_write():
    """The traced value of a tensor after an in-place write is the op's output: the exported
    graph's logits are eager's (before the fix, Relu read conv's output and add_ was dropped)."""
    tinyres.manual_seed(2)
    model = calibrated(ResidualInPlace(), tinyres.randn(8, 4, 8, 8))
    x = tinyres.randn(2, 4, 8, 8)
    proto = tinyres.onnx.export(model, x, io.BytesIO())
    expected = model(x).array
    np.testing.assert_allclose(run(proto, x)[0], expected, atol=1e-5, rtol=0)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Add") >= 2 and "Clip" in ops and ops.count("Div") >= 2 and ops.count("Sub") >= 2


class WritesAView(nn.Module):
    def forward(self, x):
        y = x * 1
        corner = y[:, :2]
        corner += 1                 # writes y too: the graph cannot follow (yet)
        return y * 2


class ActivationsInPlace(nn.Module):
    def forward(self, x):
        y = x * 1
        F.hardtanh(y, -0.5, 0.5, inplace=True)          # MobileNet's ReLU6(inplace=True) is this too
        z = y * 3
        F.silu(z, inplace=True)
        return z + 1


def test_in_place_activations_export_as_the_values_they_write():
    x = tinyres.randn(2, 4, 3, 3)
    proto = tinyres.onnx.export(ActivationsInPlace(), x, io.BytesIO())
    np.testing.assert_allclose(run(proto, x)[0], ActivationsInPlace()(x).numpy(), rtol=1e-5, atol=1e-6)


def test_an_in_place_write_the_graph_cannot_follow_is_an_export_error():
    with pytest.raises(ExportError, match="written in place in a way the graph cannot follow"):
        tinyres.onnx.export(WritesAView(), tinyres.randn(2, 4, 3, 3), io.BytesIO())


class Powers(nn.Module):
    def forward(self, x):
        return 2 ** x + x.abs() ** x[:1]


def test_tensor_exponents_export_as_pow():
    x = tinyres.randn(3, 4)
    proto = tinyres.onnx.export(Powers(), x, io.BytesIO())
    np.testing.assert_allclose(run(proto, x)[0], Powers()(x).array, rtol=1e-5, atol=1e-6)


class TensorBounds(nn.Module):
    def __init__(self):
        super().__init__()
        self.lo = nn.Parameter(tinyres.tensor([-0.5, 0.0, 0.25, 3.0]))

    def forward(self, x):
        return x.clamp(min=self.lo, max=tinyres.ones(4) * 2) + x.clamp(max=self.lo)


def test_tensor_bounds_of_clamp_export_as_max_and_min_reading_the_parameter():
    x = tinyres.randn(3, 4) * 2
    model = TensorBounds()
    proto = tinyres.onnx.export(model, x, io.BytesIO())
    np.testing.assert_allclose(run(proto, x)[0], model(x).array, rtol=1e-6)
    ops = [n.op_type for n in proto.graph.node]
    assert "Clip" not in ops and ops.count("Max") == 1 and ops.count("Min") == 2
    assert "lo" in {i.name for i in proto.graph.initializer}
    assert "lo" in {name for n in proto.graph.node for name in n.input}
