"""free_port keeps its pick from other processes' bind(0) but not from the child it is for."""

from __future__ import annotations

import errno
import socket

import pytest

from indexer.embedded import free_port


def test_a_picked_port_is_held_from_plain_binds() -> None:
    """bind(0) skips a port held this way; a plain bind to it is refused the same way."""
    port = free_port()
    with socket.socket() as plain, pytest.raises(OSError) as refused:
        plain.bind(("127.0.0.1", port))
    assert refused.value.errno == errno.EADDRINUSE


def test_the_child_it_is_for_can_listen_on_it() -> None:
    """Servers bind with SO_REUSEADDR (Go, Rust, asyncio, PostgreSQL): they get the port."""
    port = free_port()
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = server.accept()
            accepted.close()
