"""Signal a running subprocess at a chosen moment, for the kill and Ctrl-C tests."""

from __future__ import annotations

import subprocess
import time


def signal_when(
    proc: subprocess.Popen, ready, sig: int, *, what: str, timeout: float = 240, end_timeout: float = 60
) -> tuple[str, str]:
    """Send ``sig`` to ``proc`` as soon as ``ready()`` holds (polled every 10 ms), then wait for it to end; its
    ``(stdout, stderr)``. Fails if ``proc`` ends first or ``ready()`` does not hold within ``timeout`` seconds
    (``what``: what the signal does, for the messages, e.g. ``"killed"``)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before it could be {what}: {proc.communicate()[1]}"
        assert time.monotonic() < deadline, f"the run never reached the point to be {what} at"
        time.sleep(0.01)
    proc.send_signal(sig)
    return proc.communicate(timeout=end_timeout)
