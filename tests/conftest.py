"""Tests never touch the network: any attempt to open a connection (other than a Unix
socket between local processes) fails loudly.  The CuPy
double (``fake_cupy``) is installed here for every test that asks for it -- or, with
``TINYRES_TEST_CUPY=real`` (benchmarks/gpu_check.py on a GPU machine), the real CuPy."""
import os
import socket

import pytest

from tinyres import backend
from cupy_double import make_fake_cupy


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("tests must not touch the network")
    connect = socket.socket.connect

    def connect_locally(sock, address):       # Unix sockets stay on the machine (torch's workers use them)
        if sock.family != getattr(socket, "AF_UNIX", None):
            refuse()
        return connect(sock, address)
    monkeypatch.setattr(socket.socket, "connect", connect_locally)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def fake_cupy(monkeypatch):
    """The strict CuPy double (tests/cupy_double.py) as tinyres's CuPy, two fake GPUs."""
    if os.environ.get("TINYRES_TEST_CUPY") == "real":
        if not backend.is_cuda_available():
            pytest.fail("TINYRES_TEST_CUPY=real, but CuPy sees no GPU")
        return backend.cupy_module()
    cp = make_fake_cupy()
    monkeypatch.setattr(backend, "_cupy", cp)
    monkeypatch.setattr(backend, "_cuda_states", {})      # the GPUs' generators live on these GPUs
    return cp


@pytest.fixture
def strict_double(fake_cupy):
    """The double itself, for tests of what only it can tell (transfer counts, planted bugs)."""
    if not hasattr(fake_cupy, "transfers"):
        pytest.skip("needs the CuPy double, not a real GPU")
    return fake_cupy
