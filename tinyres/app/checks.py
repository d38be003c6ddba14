"""The table of gradient checks a user can run: ``tinyres gradcheck``, ``examples/gradcheck_tour.py``.

``CASES`` lists one ``GradcheckCase`` per layer op of ``tinyres.nn.functional``; a new op
takes one row here.  Each runs on small float64 inputs: its analytic backward is compared
with central finite differences under a random upstream gradient (``gradient_pairs``, the
same check as ``gradcheck``), and, when PyTorch is installed, its output and input
gradients with ``torch.nn.functional``'s.  ``tests/test_checks.py`` runs the same table with
tighter tolerances and against torch.
"""
import numpy

from ..core.tensor import Tensor, tensor
from ..nn import functional as F
from ..testing import GradcheckCase, distinct, gradient_pairs

ATOL, RTOL = 1e-5, 1e-3      # gradcheck's tolerances
TORCH_RTOL = 1e-8            # float64 against torch

_TARGET = numpy.array([0, 3, 1, 2, 3])
_TOKENS = numpy.array([[0, 1, 3, 1], [2, 1, 0, 0]])          # embedding's indices, repeated (their gradients add)
_MEAN, _VAR = numpy.array([0.3, -0.2, 0.5]), numpy.array([0.8, 1.5, 0.6])     # batch norm's running statistics
_OFFSETS = numpy.random.default_rng(7).integers(0, 2, (2, 2, 3, 3, 2))       # a position in each 2 x 2 window
_UNPOOL2D_INDEX = (numpy.arange(3)[:, None] * 2 + _OFFSETS[0]) * 5 + numpy.arange(2) * 2 + _OFFSETS[1]   # in 7 x 5
_UNPOOL1D_INDEX = numpy.arange(4) * 2 + _OFFSETS[1].reshape(2, 3, 6)[..., :4]                     # in 9
_PAIRS = numpy.triu_indices(4, 1)                                              # pdist's pairs of 4 rows

CASES = [
    # activation
    GradcheckCase("relu", F.relu, lambda tf, x: tf.relu(x), lambda rng: [distinct((2, 3, 7, 6), rng)]),
    GradcheckCase("log_softmax", lambda x: F.log_softmax(x, dim=1), lambda tf, x: tf.log_softmax(x, dim=1),
                  lambda rng: [rng.standard_normal((5, 4))]),
    GradcheckCase("softmax", lambda x: F.softmax(x, dim=0), lambda tf, x: tf.softmax(x, dim=0),
                  lambda rng: [rng.standard_normal((5, 4))]),
    GradcheckCase("leaky_relu (0.1)", lambda x: F.leaky_relu(x, 0.1), lambda tf, x: tf.leaky_relu(x, 0.1),
                  lambda rng: [distinct((3, 4, 5), rng)]),
    GradcheckCase("softplus (beta 2, threshold 3)", lambda x: F.softplus(x, 2.0, 3.0),
                  lambda tf, x: tf.softplus(x, 2.0, 3.0), lambda rng: [rng.standard_normal((3, 5)) * 1.2]),
    GradcheckCase("hardtanh (-0.4, 0.7)", lambda x: F.hardtanh(x, -0.4, 0.7), lambda tf, x: tf.hardtanh(x, -0.4, 0.7),
                  lambda rng: [distinct((3, 4), rng)]),
    GradcheckCase("relu6", F.relu6, lambda tf, x: tf.relu6(x), lambda rng: [distinct((3, 4), rng) * 8]),
    GradcheckCase("silu", F.silu, lambda tf, x: tf.silu(x), lambda rng: [rng.standard_normal((3, 5)) * 2]),
    GradcheckCase("sigmoid", F.sigmoid, lambda tf, x: tf.sigmoid(x), lambda rng: [rng.standard_normal((3, 5))]),
    GradcheckCase("tanh", F.tanh, lambda tf, x: tf.tanh(x), lambda rng: [rng.standard_normal((3, 5))]),
    GradcheckCase("gelu", F.gelu, lambda tf, x: tf.gelu(x), lambda rng: [rng.standard_normal((3, 5)) * 2]),
    GradcheckCase("gelu (tanh)", lambda x: F.gelu(x, approximate="tanh"), lambda tf, x: tf.gelu(x, approximate="tanh"),
                  lambda rng: [rng.standard_normal((3, 5)) * 2]),
    # conv
    GradcheckCase("conv2d (stride 2, padding 1)", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
                  lambda tf, x, w, b: tf.conv2d(x, w, b, stride=2, padding=1),
                  lambda rng: [distinct((2, 3, 7, 6), rng), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]),
    GradcheckCase("conv2d (dilation 2, groups 3)", lambda x, w: F.conv2d(x, w, dilation=2, groups=3),
                  lambda tf, x, w: tf.conv2d(x, w, dilation=2, groups=3),
                  lambda rng: [distinct((2, 3, 7, 6), rng), rng.standard_normal((6, 1, 2, 2))]),
    GradcheckCase("conv1d (padding 1)", lambda x, w: F.conv1d(x, w, padding=1),
                  lambda tf, x, w: tf.conv1d(x, w, padding=1),
                  lambda rng: [rng.standard_normal((2, 3, 9)), rng.standard_normal((4, 3, 3))]),
    GradcheckCase("conv_transpose2d (stride 2, padding 1, output_padding 1)",
                  lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                  lambda tf, x, w, b: tf.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                  lambda rng: [rng.standard_normal((2, 4, 3, 4)), rng.standard_normal((4, 3, 3, 3)),
                               rng.standard_normal(3)]),
    GradcheckCase("conv_transpose2d (groups 2, dilation 2, output_padding 1)",
                  lambda x, w: F.conv_transpose2d(x, w, output_padding=1, groups=2, dilation=2),
                  lambda tf, x, w: tf.conv_transpose2d(x, w, output_padding=1, groups=2, dilation=2),
                  lambda rng: [rng.standard_normal((1, 4, 4, 3)), rng.standard_normal((4, 2, 2, 3))]),
    # linear
    GradcheckCase("linear", F.linear, lambda tf, x, w, b: tf.linear(x, w, b),
                  lambda rng: [rng.standard_normal((3, 5)), rng.standard_normal((2, 5)), rng.standard_normal(2)]),
    GradcheckCase("pad (1, 2, 0, 1)", lambda x: F.pad(x, (1, 2, 0, 1), value=0.5),
                  lambda tf, x: tf.pad(x, (1, 2, 0, 1), value=0.5), lambda rng: [rng.standard_normal((2, 3, 4, 3))]),
    GradcheckCase("embedding", F.embedding, lambda tf, t, w: tf.embedding(t, w),
                  lambda rng: [_TOKENS.copy(), rng.standard_normal((4, 3))]),
    GradcheckCase("interpolate (nearest, size (7, 5))", lambda x: F.interpolate(x, size=(7, 5)),
                  lambda tf, x: tf.interpolate(x, size=(7, 5)), lambda rng: [rng.standard_normal((2, 3, 4, 3))]),
    GradcheckCase("interpolate (bilinear, scale_factor 1.5)",
                  lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear"),
                  lambda tf, x: tf.interpolate(x, scale_factor=1.5, mode="bilinear"),
                  lambda rng: [rng.standard_normal((2, 3, 4, 3))]),
    GradcheckCase("interpolate (bilinear, align_corners, size (5, 2))",
                  lambda x: F.interpolate(x, size=(5, 2), mode="bilinear", align_corners=True),
                  lambda tf, x: tf.interpolate(x, size=(5, 2), mode="bilinear", align_corners=True),
                  lambda rng: [rng.standard_normal((2, 3, 4, 3))]),
    # loss
    GradcheckCase("cross_entropy (label smoothing 0.1)", lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
                  lambda tf, x, t: tf.cross_entropy(x, t, label_smoothing=0.1),
                  lambda rng: [rng.standard_normal((5, 4)), _TARGET.copy()]),
    GradcheckCase("nll_loss (sum)", lambda x, t: F.nll_loss(x, t, reduction="sum"),
                  lambda tf, x, t: tf.nll_loss(x, t, reduction="sum"),
                  lambda rng: [rng.standard_normal((5, 4)), _TARGET.copy()]),
    GradcheckCase("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
                  lambda tf, x, t: tf.binary_cross_entropy_with_logits(x, t),
                  lambda rng: [rng.standard_normal((5, 4)), rng.uniform(0, 1, (5, 4))]),
    GradcheckCase("mse_loss", F.mse_loss, lambda tf, x, t: tf.mse_loss(x, t),
                  lambda rng: [rng.standard_normal((5, 4)), rng.standard_normal((5, 4))]),
    GradcheckCase("l1_loss", F.l1_loss, lambda tf, x, t: tf.l1_loss(x, t),
                  lambda rng: [rng.standard_normal((5, 4)), rng.standard_normal((5, 4))]),
    GradcheckCase("smooth_l1_loss (beta 0.5)", lambda x, t: F.smooth_l1_loss(x, t, beta=0.5),
                  lambda tf, x, t: tf.smooth_l1_loss(x, t, beta=0.5),
                  lambda rng: [rng.standard_normal((5, 4)), rng.standard_normal((5, 4))]),
    GradcheckCase("binary_cross_entropy", F.binary_cross_entropy, lambda tf, x, t: tf.binary_cross_entropy(x, t),
                  lambda rng: [rng.uniform(0.1, 0.9, (5, 4)), rng.uniform(0, 1, (5, 4))]),
    GradcheckCase("kl_div (batchmean)", lambda x, t: F.kl_div(x, t, reduction="batchmean"),
                  lambda tf, x, t: tf.kl_div(x, t, reduction="batchmean"),
                  lambda rng: [numpy.log(rng.dirichlet(numpy.ones(4), 5)), rng.dirichlet(numpy.ones(4), 5)]),
    # normalization
    GradcheckCase("batch_norm (training)", lambda x, g, b: F.batch_norm(x, None, None, g, b, training=True),
                  lambda tf, x, g, b: tf.batch_norm(x, None, None, g, b, training=True),
                  lambda rng: [distinct((2, 3, 7, 6), rng), rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)]),
    GradcheckCase("batch_norm (eval)",
                  lambda x, g, b: F.batch_norm(x, tensor(_MEAN, x.dtype, x.device), tensor(_VAR, x.dtype, x.device), g, b),
                  lambda tf, x, g, b: tf.batch_norm(x, x.new_tensor(_MEAN), x.new_tensor(_VAR), g, b),
                  lambda rng: [rng.standard_normal((2, 3, 4, 3)), rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)]),
    GradcheckCase("group_norm (3 groups of 2 channels)", lambda x, w, b: F.group_norm(x, 3, w, b),
                  lambda tf, x, w, b: tf.group_norm(x, 3, w, b),
                  lambda rng: [distinct((2, 6, 4, 3), rng), rng.uniform(0.5, 1.5, 6), rng.standard_normal(6)]),
    GradcheckCase("layer_norm (last two dims)", lambda x, w, b: F.layer_norm(x, (4, 3), w, b),
                  lambda tf, x, w, b: tf.layer_norm(x, (4, 3), w, b),
                  lambda rng: [rng.standard_normal((2, 3, 4, 3)), rng.uniform(0.5, 1.5, (4, 3)),
                               rng.standard_normal((4, 3))]),
    GradcheckCase("normalize (p 3, dim -1)", lambda x: F.normalize(x, p=3.0, dim=-1),
                  lambda tf, x: tf.normalize(x, p=3.0, dim=-1), lambda rng: [distinct((3, 5), rng)]),
    GradcheckCase("normalize", F.normalize, lambda tf, x: tf.normalize(x), lambda rng: [rng.uniform(-2, 2, (3, 4, 2))]),
    # pooling
    GradcheckCase("max_pool2d (3, stride 2, padding 1)", lambda x: F.max_pool2d(x, 3, 2, 1),
                  lambda tf, x: tf.max_pool2d(x, 3, 2, 1), lambda rng: [distinct((2, 3, 7, 6), rng)]),
    GradcheckCase("avg_pool2d (2, ceil_mode)", lambda x: F.avg_pool2d(x, 2, ceil_mode=True),
                  lambda tf, x: tf.avg_pool2d(x, 2, ceil_mode=True), lambda rng: [distinct((2, 3, 7, 6), rng)]),
    GradcheckCase("adaptive_avg_pool2d (3, 2)", lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
                  lambda tf, x: tf.adaptive_avg_pool2d(x, (3, 2)), lambda rng: [distinct((2, 3, 7, 6), rng)]),
    GradcheckCase("adaptive_max_pool2d (3, 2)", lambda x: F.adaptive_max_pool2d(x, (3, 2)),
                  lambda tf, x: tf.adaptive_max_pool2d(x, (3, 2)), lambda rng: [distinct((2, 3, 7, 6), rng)]),
    GradcheckCase("max_pool1d (2, stride 1)", lambda x: F.max_pool1d(x, 2, 1),
                  lambda tf, x: tf.max_pool1d(x, 2, 1), lambda rng: [distinct((2, 3, 7), rng)]),
    GradcheckCase("avg_pool1d (3, padding 1)", lambda x: F.avg_pool1d(x, 3, padding=1),
                  lambda tf, x: tf.avg_pool1d(x, 3, padding=1), lambda rng: [distinct((2, 3, 7), rng)]),
    GradcheckCase("adaptive_avg_pool1d (4)", lambda x: F.adaptive_avg_pool1d(x, 4),
                  lambda tf, x: tf.adaptive_avg_pool1d(x, 4), lambda rng: [distinct((2, 3, 7), rng)]),
    GradcheckCase("adaptive_max_pool1d (3)", lambda x: F.adaptive_max_pool1d(x, 3),
                  lambda tf, x: tf.adaptive_max_pool1d(x, 3), lambda rng: [distinct((2, 3, 7), rng)]),
    # the activations, distances, instance norm and pad modes a ported script reaches for
    GradcheckCase("elu (0.7)", lambda x: F.elu(x, 0.7), lambda tf, x: tf.elu(x, 0.7),
                  lambda rng: [distinct((3, 4, 5), rng)]),
    GradcheckCase("hardswish", F.hardswish, lambda tf, x: tf.hardswish(x),
                  lambda rng: [distinct((3, 4, 5), rng) * 2.5]),
    GradcheckCase("hardsigmoid", F.hardsigmoid, lambda tf, x: tf.relu6(x + 3) / 6,     # torch's own: a float32 1/6
                  lambda rng: [distinct((3, 4, 5), rng) * 2.5]),                        # slope, no second derivative
    GradcheckCase("mish", F.mish, lambda tf, x: tf.mish(x), lambda rng: [rng.standard_normal((3, 5)) * 3]),
    GradcheckCase("selu", F.selu, lambda tf, x: tf.selu(x), lambda rng: [distinct((3, 4, 5), rng)]),
    GradcheckCase("celu (0.7)", lambda x: F.celu(x, 0.7), lambda tf, x: 0.7 * tf.elu(x / 0.7),   # torch's own
                  lambda rng: [distinct((3, 4, 5), rng)]),      # backward rounds 1 / alpha to float32 (3e-8 off)
    GradcheckCase("glu (dim 1)", lambda x: F.glu(x, 1), lambda tf, x: tf.glu(x, 1),
                  lambda rng: [rng.standard_normal((3, 4, 5)) * 2]),
    GradcheckCase("logsigmoid", F.logsigmoid, lambda tf, x: tf.logsigmoid(x),
                  lambda rng: [rng.standard_normal((3, 4, 5)) * 3]),
    GradcheckCase("softsign", F.softsign, lambda tf, x: tf.softsign(x), lambda rng: [distinct((3, 4, 5), rng) * 2]),
    GradcheckCase("softshrink (0.6)", lambda x: F.softshrink(x, 0.6), lambda tf, x: tf.softshrink(x, 0.6),
                  lambda rng: [distinct((3, 4, 5), rng)]),          # no value at the ends +-0.6
    GradcheckCase("hardshrink (0.6)", lambda x: F.hardshrink(x, 0.6), lambda tf, x: tf.hardshrink(x, 0.6),
                  lambda rng: [distinct((3, 4, 5), rng)]),
    GradcheckCase("tanhshrink", F.tanhshrink, lambda tf, x: tf.tanhshrink(x),
                  lambda rng: [rng.standard_normal((3, 4, 5)) * 2]),
    GradcheckCase("threshold (0.2, -1.5)", lambda x: F.threshold(x, 0.2, -1.5),
                  lambda tf, x: tf.threshold(x, 0.2, -1.5),
                  lambda rng: [distinct((3, 4, 5), rng)]),          # no value at 0.2
    GradcheckCase("softmin (dim 1)", lambda x: F.softmin(x, 1), lambda tf, x: tf.softmin(x, 1),
                  lambda rng: [rng.standard_normal((3, 4, 5))]),
    GradcheckCase("rrelu (eval, 0.1, 0.3)", lambda x: F.rrelu(x, 0.1, 0.3), lambda tf, x: tf.rrelu(x, 0.1, 0.3),
                  lambda rng: [distinct((3, 4, 5), rng)]),
    GradcheckCase("prelu (per channel)", F.prelu, lambda tf, x, w: tf.prelu(x, w),
                  lambda rng: [distinct((2, 3, 4), rng), rng.uniform(0.1, 0.5, 3)]),
    GradcheckCase("cosine_similarity", F.cosine_similarity, lambda tf, a, b: tf.cosine_similarity(a, b),
                  lambda rng: [rng.standard_normal((4, 5)), rng.standard_normal((4, 5))]),
    GradcheckCase("pairwise_distance (p 3)", lambda a, b: F.pairwise_distance(a, b, 3.0),
                  lambda tf, a, b: tf.pairwise_distance(a, b, 3.0),
                  lambda rng: [rng.standard_normal((4, 5)), rng.standard_normal((4, 5))]),
    GradcheckCase("instance_norm", lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
                  lambda tf, x, w, b: tf.instance_norm(x, weight=w, bias=b),
                  lambda rng: [distinct((2, 3, 4, 3), rng), rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)]),
    GradcheckCase("pad (reflect 2, 1, 1, 2)", lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"),
                  lambda tf, x: tf.pad(x, (2, 1, 1, 2), mode="reflect"),
                  lambda rng: [rng.standard_normal((2, 3, 4, 3))]),
    GradcheckCase("pad (replicate 3, 0)", lambda x: F.pad(x, (3, 0), mode="replicate"),
                  lambda tf, x: tf.pad(x, (3, 0), mode="replicate"), lambda rng: [rng.standard_normal((2, 3, 4))]),
    GradcheckCase("pad (circular 1, 2, 2, 1)", lambda x: F.pad(x, (1, 2, 2, 1), mode="circular"),
                  lambda tf, x: tf.pad(x, (1, 2, 2, 1), mode="circular"),
                  lambda rng: [rng.standard_normal((2, 3, 4, 3))]),
    GradcheckCase("pixel_shuffle (2)", lambda x: F.pixel_shuffle(x, 2), lambda tf, x: tf.pixel_shuffle(x, 2),
                  lambda rng: [rng.standard_normal((2, 8, 3, 2))]),
    GradcheckCase("pixel_unshuffle (2)", lambda x: F.pixel_unshuffle(x, 2), lambda tf, x: tf.pixel_unshuffle(x, 2),
                  lambda rng: [rng.standard_normal((2, 2, 4, 6))]),
    # fold, vision
    GradcheckCase("unfold (kernel (2, 3), dilation 2, padding 1, stride (2, 1))",
                  lambda x: F.unfold(x, (2, 3), dilation=2, padding=1, stride=(2, 1)),
                  lambda tf, x: tf.unfold(x, (2, 3), dilation=2, padding=1, stride=(2, 1)),
                  lambda rng: [rng.standard_normal((2, 3, 7, 6))]),
    GradcheckCase("fold (output (5, 6), kernel 3, padding 1, stride 2)",
                  lambda x: F.fold(x, (5, 6), 3, padding=1, stride=2),
                  lambda tf, x: tf.fold(x, (5, 6), 3, padding=1, stride=2),
                  lambda rng: [rng.standard_normal((2, 18, 9))]),
    GradcheckCase("grid_sample (bilinear, zeros)", lambda x, g: F.grid_sample(x, g, align_corners=False),
                  lambda tf, x, g: tf.grid_sample(x, g, align_corners=False),
                  lambda rng: [rng.standard_normal((2, 3, 4, 5)), rng.uniform(-1.2, 1.2, (2, 3, 4, 2))]),
    GradcheckCase("grid_sample (bicubic, reflection, align_corners)",
                  lambda x, g: F.grid_sample(x, g, "bicubic", "reflection", align_corners=True),
                  lambda tf, x, g: tf.grid_sample(x, g, "bicubic", "reflection", align_corners=True),
                  lambda rng: [rng.standard_normal((1, 2, 4, 5)), rng.uniform(-1.4, 1.4, (1, 3, 2, 2))]),
    GradcheckCase("grid_sample (nearest, border)", lambda x, g: F.grid_sample(x, g, "nearest", "border", False),
                  lambda tf, x, g: tf.grid_sample(x, g, "nearest", "border", False),
                  lambda rng: [rng.standard_normal((1, 2, 4, 5)), rng.uniform(-1.2, 1.2, (1, 3, 2, 2))]),
    GradcheckCase("affine_grid (2-D)", lambda t: F.affine_grid(t, (2, 3, 4, 5), align_corners=False),
                  lambda tf, t: tf.affine_grid(t, (2, 3, 4, 5), align_corners=False),
                  lambda rng: [rng.standard_normal((2, 2, 3))]),
    # channel shuffle, RMS and local response norm, bilinear, pools with indices, unpool, LP pool, pdist
    GradcheckCase("channel_shuffle (3)", lambda x: F.channel_shuffle(x, 3), lambda tf, x: tf.channel_shuffle(x, 3),
                  lambda rng: [rng.standard_normal((2, 6, 3, 2))]),
    GradcheckCase("native_channel_shuffle (2)", lambda x: F.native_channel_shuffle(x, 2),
                  lambda tf, x: tf.channel_shuffle(x, 2),          # torch's native kernel has no derivative
                  lambda rng: [rng.standard_normal((2, 4, 3))]),
    GradcheckCase("rms_norm (last dim)", lambda x, w: F.rms_norm(x, (4,), w), lambda tf, x, w: tf.rms_norm(x, (4,), w),
                  lambda rng: [rng.standard_normal((2, 3, 4)), rng.uniform(0.5, 1.5, 4)]),
    GradcheckCase("local_response_norm (3, alpha 0.5)", lambda x: F.local_response_norm(x, 3, 0.5),
                  lambda tf, x: tf.local_response_norm(x, 3, 0.5), lambda rng: [rng.standard_normal((2, 5, 3, 2))]),
    GradcheckCase("bilinear", F.bilinear, lambda tf, a, b, w, c: tf.bilinear(a, b, w, c),
                  lambda rng: [rng.standard_normal((3, 2)), rng.standard_normal((3, 4)), rng.standard_normal((5, 2, 4)),
                               rng.standard_normal(5)]),
    GradcheckCase("max_pool2d_with_indices (3, stride 2, padding 1)", lambda x: F.max_pool2d_with_indices(x, 3, 2, 1)[0],
                  lambda tf, x: tf.max_pool2d_with_indices(x, 3, 2, 1)[0], lambda rng: [distinct((2, 3, 7, 6), rng)]),
    GradcheckCase("max_pool1d_with_indices (3, stride 2)", lambda x: F.max_pool1d_with_indices(x, 3, 2)[0],
                  lambda tf, x: tf.max_pool1d_with_indices(x, 3, 2)[0], lambda rng: [distinct((2, 3, 7), rng)]),
    GradcheckCase("adaptive_max_pool2d_with_indices (3, 2)", lambda x: F.adaptive_max_pool2d_with_indices(x, (3, 2))[0],
                  lambda tf, x: tf.adaptive_max_pool2d_with_indices(x, (3, 2))[0],
                  lambda rng: [distinct((2, 3, 7, 6), rng)]),
    GradcheckCase("adaptive_max_pool1d_with_indices (3)", lambda x: F.adaptive_max_pool1d_with_indices(x, 3)[0],
                  lambda tf, x: tf.adaptive_max_pool1d_with_indices(x, 3)[0], lambda rng: [distinct((2, 3, 7), rng)]),
    GradcheckCase("max_unpool2d (2, output_size (7, 5))", lambda x, i: F.max_unpool2d(x, i, 2, output_size=(7, 5)),
                  lambda tf, x, i: tf.max_unpool2d(x, i, 2, output_size=(7, 5)),
                  lambda rng: [rng.standard_normal((2, 3, 3, 2)), _UNPOOL2D_INDEX.copy()]),
    GradcheckCase("max_unpool1d (2, output_size (9,))", lambda x, i: F.max_unpool1d(x, i, 2, output_size=(9,)),
                  lambda tf, x, i: tf.max_unpool1d(x, i, 2, output_size=(9,)),
                  lambda rng: [rng.standard_normal((2, 3, 4)), _UNPOOL1D_INDEX.copy()]),
    GradcheckCase("lp_pool2d (2, kernel 2, stride 1)", lambda x: F.lp_pool2d(x, 2, 2, 1),
                  lambda tf, x: tf.lp_pool2d(x, 2, 2, 1), lambda rng: [distinct((2, 3, 5, 4), rng)]),
    GradcheckCase("lp_pool1d (1.5, kernel 3, stride 2, ceil_mode)", lambda x: F.lp_pool1d(x, 1.5, 3, 2, True),
                  lambda tf, x: tf.lp_pool1d(x, 1.5, 3, 2, True), lambda rng: [rng.uniform(0.5, 2, (2, 3, 8))]),
    GradcheckCase("pdist", F.pdist, lambda tf, x: (x[_PAIRS[0]] - x[_PAIRS[1]]).norm(dim=1),   # torch's pdist has
                  lambda rng: [rng.standard_normal((4, 3))]),              # no second derivative: its composite
    GradcheckCase("pdist (p 3)", lambda x: F.pdist(x, 3), lambda tf, x: (x[_PAIRS[0]] - x[_PAIRS[1]]).norm(3, dim=1),
                  lambda rng: [rng.standard_normal((4, 3))]),
]


def cases():
    """Every ``GradcheckCase`` of the table."""
    return list(CASES)


def case_inputs(case, seed=0):
    """The input arrays of ``case``, the same for the same seed."""
    return case.inputs(numpy.random.default_rng(seed))


def _differentiable(array):
    return array.dtype.kind == "f"


def _torch_difference(fn, torch_fn, arrays, seed):
    """The largest relative difference from torch in the output and the input gradients,
    or None without torch."""
    try:
        import torch
        import torch.nn.functional as tf
    except ImportError:
        return None
    ours = [Tensor(a.copy(), requires_grad=_differentiable(a)) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=_differentiable(a)) for a in arrays]
    y, ty = fn(*ours), torch_fn(tf, *theirs)
    upstream = numpy.random.default_rng(seed).standard_normal(y.shape)
    y.backward(Tensor(upstream))
    ty.backward(torch.tensor(upstream))
    pairs = [(y.numpy(), ty.detach().numpy())] + [(a.grad.numpy(), t.grad.numpy())
                                                  for a, t in zip(ours, theirs) if a.requires_grad]
    return max(float(numpy.max(numpy.abs(a - b) / (numpy.abs(b) + 1e-12))) for a, b in pairs)


def run_layer_checks(seed=0):
    """One row per op: name, the worst |numeric - analytic|, the difference from torch, ok."""
    rows = []
    for case in cases():
        arrays = case_inputs(case, seed)
        inputs = [Tensor(a.copy(), requires_grad=_differentiable(a)) for a in arrays]
        error, ok = 0.0, True
        for _, _, numeric, analytic in gradient_pairs(case.fn, inputs, seed=seed):
            diff = numpy.abs(analytic - numeric)
            error = max(error, float(numpy.max(diff)))
            ok &= bool(numpy.all(diff <= ATOL + RTOL * numpy.abs(numeric)))
        torch_difference = _torch_difference(case.fn, case.torch_fn, arrays, seed)
        if torch_difference is not None:
            ok &= torch_difference <= TORCH_RTOL
        rows.append({"name": case.name, "error": error, "torch": torch_difference, "ok": ok})
    return rows
