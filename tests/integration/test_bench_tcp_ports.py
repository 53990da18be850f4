"""Ports for servers that start later (`daemon.cli.bench.tcp_ports`): never from
the range outgoing connections take theirs from."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from daemon.cli.bench import tcp_ports as ports


def _ephemeral() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_ports_come_from_below_the_ephemeral_range_free_and_never_twice() -> None:
    low, _ = _ephemeral()
    given = [ports.free_port() for _ in range(50)]
    assert len(set(given)) == 50
    assert all(ports.LOWEST <= port < low for port in given)
    for port in given:  # free: a server can bind each
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_someone_listens_on_is_passed_over() -> None:
    with socket.socket() as busy, socket.socket() as connected:
        busy.bind(("127.0.0.1", ports.free_port()))
        busy.listen()
        # the case seen in CI: an outgoing connection's own (local) port
        connected.connect(busy.getsockname())
        taken = [busy.getsockname()[1], connected.getsockname()[1]]
        spare = ports.free_port()
        assert ports.first_free([*taken, spare]) == spare
        assert ports.first_free(taken) is None


def test_a_range_with_no_room_below_it_falls_back_to_the_kernels_choice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "range").write_text("1024\t60999\n")
    monkeypatch.setattr(ports, "_RANGE_FILE", str(tmp_path / "range"))
    port = ports.free_port()
    assert port >= _ephemeral()[0]  # the kernel's own range, the one it really uses
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
