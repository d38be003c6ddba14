"""Array kernels: code on NumPy/CuPy arrays that knows nothing of Tensors or autograd.

``threads`` (CPU threads and scratch buffers), ``im2col`` (im2col/col2im, shared by
convolution and pooling), ``special`` (erf, which NumPy lacks) and ``reference`` (convolution
and pooling with plain loops, the independent check of the fast paths).
"""
