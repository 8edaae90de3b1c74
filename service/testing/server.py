"""Run ``cratewatch serve`` as a real subprocess on a free loopback port (restart, SIGKILL)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cratewatch_command() -> list[str]:
    script = Path(sys.executable).parent / "cratewatch"
    return [str(script)] if script.exists() else [sys.executable, "-m", "service.cli"]


def rss_mb(pid: int) -> float:
    """Resident set size of the server process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class LiveServer:
    """One server process at a time; ``start`` again after ``kill`` to test restarts."""

    def __init__(self, catalog: Path, data: Path, model: Path, log_dir: Path,
                 env: dict[str, str] | None = None) -> None:
        self.catalog, self.data, self.model, self.log_dir = catalog, data, model, log_dir
        self.env = {**os.environ, "CRATEWATCH_THREADS": "1", **(env or {})}
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"server-{self.port}-{self.starts}.log"

    def start(self, wait_ready: bool = True, timeout_s: float = 120.0) -> None:
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = cratewatch_command() + [
            "serve", "--catalog", str(self.catalog), "--data", str(self.data),
            "--model", str(self.model), "--host", "127.0.0.1", "--port", str(self.port),
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        if wait_ready:
            self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = 120.0) -> dict[str, object]:
        """Poll /readyz until 200; raises with the server log if it dies or never gets ready."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                r = httpx.get(f"{self.url}/readyz", timeout=2.0)
                if r.status_code == 200:
                    body: dict[str, object] = r.json()
                    return body
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout_s} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing: what a power cut or OOM kill does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
