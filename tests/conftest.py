"""Tests never touch the network: any attempt to open a connection fails loudly.  The CuPy
double (``fake_cupy``) is installed here for every test that asks for it."""
import socket

import pytest

from tinyres import backend
from cupy_double import make_fake_cupy


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("tests must not touch the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def fake_cupy(monkeypatch):
    """The strict CuPy double (tests/cupy_double.py) as tinyres's CuPy, two fake GPUs."""
    cp = make_fake_cupy()
    monkeypatch.setattr(backend, "_cupy", cp)
    return cp
