"""The Ray side of a sweep: each model one Ray task, its run directory sent back to the driver as bytes.

A task gets plain data only (the experiment's name and its config as ``run.json`` records it), runs the
experiment into a temporary directory on whichever machine Ray picked, and returns the files of that run
directory (``{relative name: bytes}``) or a one-line reason; the driver writes them under its own ``--out``
through :meth:`~layerscope.rundir.RunDir.write_files`. Nothing is left on the worker's disk.

Ray is optional (``pip install 'layerscope[ray]'``): :func:`ray_available` says whether it is installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ... import progress
from ...errors import LayerscopeError
from ...rundir import UNFINISHED
from .config import config_of

#: a local Ray instance's object store: run directories pass through it one at a time
LOCAL_OBJECT_STORE = 256 << 20


def ray_available() -> bool:
    """Whether Ray is installed (``pip install 'layerscope[ray]'``)."""
    return importlib.util.find_spec("ray") is not None


@dataclass
class RayTask:
    """One model's task: what it runs and what it asks Ray for."""

    key: str
    experiment: str
    record: dict
    memory: int
    gpus: int = 0
    options: dict = field(default_factory=dict)
    work: WorkRoot | None = None


@dataclass(frozen=True)
class WorkRoot:
    """Where a task writes its run before sending it back: a hidden ``.part`` folder inside the sweep's
    directory (so a sweep killed with its tasks leaves nothing outside it, and its rerun's claim of the directory
    removes what was left), recognised on a worker's machine by the ``token`` file in it; a worker that does not
    see it (another machine, no shared disk) writes to its temporary directory instead."""

    path: str
    token: str

    @classmethod
    def create(cls, sweep_dir: Path) -> WorkRoot:
        """A new work folder in ``sweep_dir`` (an earlier one, a killed sweep's, is replaced)."""
        import secrets
        import shutil

        path = Path(sweep_dir) / WORK_FOLDER
        if path.is_symlink() or path.is_file():
            path.unlink()
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        token = secrets.token_hex(16)
        (path / "token").write_text(token)
        return cls(str(path), token)

    def here(self) -> Path | None:
        """The folder, when this machine sees it (its token file is this root's), else None."""
        path = Path(self.path)
        try:
            if path.is_symlink() or (path / "token").read_text() != self.token:
                return None
        except (OSError, UnicodeDecodeError):
            return None
        return path

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)


#: the hidden ``.part`` folder of a sweep's directory its Ray tasks write their runs in (see :class:`WorkRoot`)
WORK_FOLDER = ".ray-work.part"


def local_ray_options(num_cpus: int | None = None) -> dict:
    """``ray.init`` options for a local instance on this machine: ``num_cpus`` (default: every core), no
    dashboard, a small object store, and workers that import the same layerscope as this process."""
    import layerscope

    package_root = str(Path(layerscope.__file__).resolve().parents[1])
    paths = [package_root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return {
        "address": "local",
        "num_cpus": num_cpus or os.cpu_count() or 1,
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,
        "object_store_memory": LOCAL_OBJECT_STORE,
        "runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}},
    }


def start_local_ray(num_cpus: int | None = None):
    """Start a local Ray instance (see :func:`local_ray_options`); returns the ``ray`` module."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(**local_ray_options(num_cpus))
    return ray


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None) -> Iterator[object]:
    """The ``ray`` module, connected: to Ray already initialized in this process (left running), to the
    cluster at ``address`` (refused in one line within :data:`CONNECT_TIMEOUT` seconds when nothing answers
    there, see :func:`check_reachable`), or to a new local instance (both shut down afterwards). What Ray itself
    prints while it starts and stops is kept out of the terminal (:func:`captured_output`)."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    if address:
        check_reachable(address)
    try:
        with captured_output():
            if address:
                ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            else:
                start_local_ray(num_cpus)
    except Exception as exc:  # a wrong address, a cluster that is down, a port in use
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LayerscopeError(f"cannot start or reach {where}: {first[:300]}") from None
    try:
        yield ray
    finally:
        with captured_output():
            ray.shutdown()


#: seconds a ``--ray-address`` has to resolve, and then to accept a TCP connection
CONNECT_TIMEOUT = 3.0


def ray_endpoint(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``--ray-address`` (``HOST:PORT``, ``ray://HOST:PORT``, ``[IPv6]:PORT``); None for
    ``auto`` and ``local`` (Ray finds or starts the instance on this machine itself).

    Example:
        >>> ray_endpoint("ray://head.example:10001"), ray_endpoint("auto")
        (('head.example', 10001), None)
    """
    import urllib.parse

    text = str(address).strip()
    if text in ("auto", "local"):
        return None
    scheme, sep, rest = text.partition("://")
    if sep and scheme != "ray":
        raise LayerscopeError(f"--ray-address {address!r} has scheme {scheme!r}; give HOST:PORT or ray://HOST:PORT")
    try:
        parsed = urllib.parse.urlsplit("//" + (rest if sep else text))
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host = port = None
    if not host or port is None or parsed.path or parsed.query or parsed.fragment:
        raise LayerscopeError(
            f"--ray-address {address!r} is not HOST:PORT; give e.g. 127.0.0.1:6379 or ray://HOST:10001"
        )
    return host, port


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Refuse, in one line, a ``--ray-address`` whose host does not resolve, whose port takes no TCP connection,
    or where no gRPC server answers, within ``timeout`` seconds each (Ray itself would retry for many minutes).
    """
    endpoint = ray_endpoint(address)
    if endpoint is None:
        return
    host, port = endpoint
    answer: list = []

    def resolve() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            answer.append(exc)

    lookup = threading.Thread(target=resolve, name="layerscope ray-address lookup", daemon=True)
    lookup.start()
    lookup.join(timeout)  # a resolver that never answers is left behind (a daemon thread), not waited for
    if not answer:
        raise LayerscopeError(f"--ray-address {address!r}: host {host!r} did not resolve within {timeout:g} s")
    found = answer[0]
    if isinstance(found, BaseException):
        reason = getattr(found, "strerror", None) or str(found) or type(found).__name__
        raise LayerscopeError(f"--ray-address {address!r}: unknown host {host!r} ({reason})")
    why = "no address"
    for family, kind, proto, _, where in found:
        with socket.socket(family, kind, proto) as probe:
            probe.settimeout(timeout)
            try:
                probe.connect(where)
            except TimeoutError:
                why = f"no answer within {timeout:g} s"
            except OSError as exc:
                why = exc.strerror or type(exc).__name__
            else:
                break
    else:
        raise LayerscopeError(
            f"--ray-address {address!r}: nothing accepts connections at {host}:{port} ({why}); is the Ray cluster "
            "up (`ray start --head` prints its address)?"
        )
    if not _answers_grpc(host, port, timeout):
        raise LayerscopeError(
            f"--ray-address {address!r}: {host}:{port} accepts connections but does not answer as Ray does (gRPC) "
            f"within {timeout:g} s; give the address `ray start --head` printed"
        )


def _answers_grpc(host: str, port: int, timeout: float) -> bool:
    """Whether a gRPC channel to ``host:port`` (Ray's GCS and Ray Client both speak gRPC) gets ready within
    ``timeout`` seconds: a port where something else listens never does."""
    try:
        import grpc
    except ImportError:  # pragma: no cover - Ray installs grpcio
        return True
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with captured_output():
        channel = grpc.insecure_channel(target)
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            return False
        finally:
            channel.close()
    return True


@contextlib.contextmanager
def captured_output() -> Iterator[None]:
    """While the block runs, what is written to this process's stdout and stderr (file descriptors 1 and 2,
    where Ray's C++ core prints its warnings) goes to an unnamed temporary file, dropped afterwards."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = []
    with tempfile.TemporaryFile() as sink:
        try:
            for fd in (1, 2):
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


def largest_node_memory(ray) -> int | None:
    """The most ``memory`` one alive Ray node offers (a request above it could never be scheduled)."""
    sizes = [int(n.get("Resources", {}).get("memory", 0)) for n in ray.nodes() if n.get("Alive")]
    return max(sizes) if sizes else None


def cluster_gpus(ray) -> float:
    return float(ray.cluster_resources().get("GPU", 0))


def run_tasks(ray, tasks: Sequence[RayTask]) -> Iterator[tuple[RayTask, dict]]:
    """Submit every task and yield ``(task, payload)`` as each one ends, in the order they end.

    A payload is what :func:`run_model_task` returned, or ``{"status": "failed", "reason": ...}`` when Ray
    itself lost the task (a worker killed for memory, a node gone).
    """
    remote = ray.remote(run_model_task)
    pending = {}
    for task in tasks:
        options = {"num_cpus": 1, "memory": max(int(task.memory), 1), "max_retries": 0, **task.options}
        if task.gpus:
            options["num_gpus"] = task.gpus
        ref = remote.options(name=f"layerscope {task.experiment} {task.key}", **options).remote(
            task.experiment, task.record, task.work
        )
        pending[ref] = task
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        task = pending.pop(done[0])
        try:
            payload = ray.get(done[0])
        except Exception as exc:  # the task did not come back: ray.exceptions.RayError and its kin
            payload = {"status": "failed", "reason": f"the Ray task failed: {one_line(exc)}"}
        yield task, payload


def one_line(exc: BaseException) -> str:
    """An exception as one line: a layerscope error's own message, else ``Type: first line``."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if isinstance(exc, LayerscopeError):
        return first[:500]
    return f"{type(exc).__name__}: {first}"[:500] if first else type(exc).__name__


def run_model_task(experiment: str, record: dict, work: WorkRoot | None = None) -> dict:
    """Run one model's experiment (the config rebuilt from its ``run.json`` record) into a temporary run
    directory and return its files: ``{"status": "ok", "files": {name: bytes}, "workdir": path, "seconds": s}``,
    or ``{"status": "failed", "reason": one line}``. This is the function a Ray worker runs.

    The temporary directory is made in ``work`` (the sweep's own work folder) when this machine sees it, else in
    the system's temporary directory; it is removed when the task ends (a task killed with its sweep leaves it in
    the work folder, which the sweep's rerun removes)."""
    progress.set_enabled(False)
    start, where = time.perf_counter(), {"host": socket.gethostname(), "started": time.time()}
    try:
        root = work.here() if work is not None else None
        with tempfile.TemporaryDirectory(prefix="layerscope-sweep-", dir=root) as tmp:
            out = Path(tmp) / "run"
            config = config_of(experiment, record, resume_dir=str(out))
            from ...runner import execute

            execute(config, out=out)
            files = {
                str(path.relative_to(out)): path.read_bytes()
                for path in sorted(out.rglob("*"))
                if path.is_file() and not path.is_symlink() and path.name != UNFINISHED
            }
    except Exception as exc:
        return {"status": "failed", "reason": one_line(exc), "seconds": time.perf_counter() - start, **where}
    return {"status": "ok", "files": files, "workdir": str(out), "seconds": time.perf_counter() - start, **where}
