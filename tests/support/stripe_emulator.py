"""localstripe, the Stripe emulator (GPL: run as a subprocess on a free loopback port, never
imported), for the billing tests and the browser-test servers."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(proc, base: str) -> bool:
    for _ in range(100):
        try:
            urlopen(base + "/js.stripe.com/v3/", timeout=1)
            return True
        except OSError:
            if proc.poll() is not None:
                return False
            time.sleep(0.1)
    proc.terminate()
    proc.wait(10)
    return False


@contextmanager
def localstripe():
    """The emulator's base URL while the block runs; stopped after."""
    binary = Path(sys.executable).with_name("localstripe")
    binary = str(binary) if binary.exists() else shutil.which("localstripe")
    if binary is None:
        raise RuntimeError("localstripe is not installed (pip install -e '.[dev]')")
    for attempt in range(3):  # a free port may be taken by another process before localstripe binds it
        port = free_port()
        proc = subprocess.Popen([binary, "--port", str(port), "--from-scratch"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        if _answers(proc, base):
            break
        if attempt == 2:
            raise RuntimeError("localstripe did not start")
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
