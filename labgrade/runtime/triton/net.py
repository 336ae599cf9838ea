"""Loopback plumbing shared by the embedded server and the container: HTTP without the
environment's proxies, port checks, free ports."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

from labgrade.runtime.process import free_port

# Loopback calls never go through an HTTP proxy from the environment (urllib's default).
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether a GET of `url` answers 2xx (False for no answer at all)."""
    try:
        with LOOPBACK.open(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def three_free_ports() -> tuple[int, int, int]:
    """Three distinct free loopback ports: HTTP, gRPC, metrics."""
    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports[0], ports[1], ports[2]
