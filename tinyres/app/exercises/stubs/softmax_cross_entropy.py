"""Exercise softmax_cross_entropy: the loss and its gradient in one.
                                                   tinyres exercise check softmax_cross_entropy
    logits z (N, C), target t (N,) of class indices 0 .. C-1
    p = softmax(z) row by row:  p[n, k] = exp(z[n, k]) / sum_j exp(z[n, j])
    loss = -(1/N) sum_n log p[n, t[n]]            (the mean over the batch, as F.cross_entropy)

Return (loss, glogits) with glogits = d loss / d z, of shape (N, C).  Derive it: it is
remarkably simple.

Make it stable: exp(1000) is inf in float64.  Softmax does not change when a constant is
subtracted from a row, so subtract each row's maximum first, and compute log p as
z - max - log(sum exp(z - max)) rather than log(p).  The checker tries logits near 1000.
The math: docs/losses.md.
"""
import numpy as np  # noqa: F401 (for your code)


def softmax_cross_entropy(logits, target):
    raise NotImplementedError        # return loss, glogits
