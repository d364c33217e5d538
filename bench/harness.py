"""What the parts of ``bench/suite.py`` share: servers on free 127.0.0.1 ports, stopped by
process group; a config writer; synthetic members; a durable log written fast.

Every server started here runs in a session of its own and is registered, so
:func:`stop_all` (called on exit, error and SIGTERM by the suite) kills every group.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from http_bench import HOST, BenchError, fetch, free_port, start, stop  # noqa: E402

DAY_MS = 86_400_000
_PROCS: list[subprocess.Popen] = []


@dataclass
class Ctx:
    """Settings every part reads: ``quick`` shrinks sizes (and says so in the results)."""

    quick: bool
    tmp: Path
    cpus: list[int] = field(default_factory=lambda: sorted(os.sched_getaffinity(0)))
    notes: list[str] = field(default_factory=list)

    def log(self, msg: str) -> None:
        print(f"  {msg}", file=sys.stderr, flush=True)


def start_server(name: str, argv: list[str], log_path: Path, *, env: dict | None = None,
                 cpus: set[int] | None = None) -> subprocess.Popen:
    if env:
        os.environ.update(env)  # inherited by the child; only bench-private names are set
    proc = start(name, argv, log_path, cpus)
    _PROCS.append(proc)
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    stop(proc)
    if proc in _PROCS:
        _PROCS.remove(proc)


def stop_all() -> None:
    for proc in reversed(list(_PROCS)):
        stop(proc)
    _PROCS.clear()


def ldf_argv(config: Path, port: int, data_dir: Path | None) -> list[str]:
    argv = [str(Path(sys.executable).parent / "ldf-server"), "--config", str(config), "--host", HOST,
            "--port", str(port), "--base-url", f"http://{HOST}:{port}", "--log-level", "warning"]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    return argv


def wait_status(port: int, path: str, proc: subprocess.Popen, timeout: float, log_path: Path,
                poll: float = 0.05) -> float:
    """Seconds until ``path`` answers 200 (raises if the process exits or the time runs out)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise BenchError(f"server exited ({proc.returncode}):\n{_tail(log_path)}")
        try:
            if fetch(port, path)[0] == 200:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(poll)
    raise BenchError(f"{path} not 200 after {timeout:.0f} s:\n{_tail(log_path)}")


def _tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def write_config(path: Path, *, pilot: str = "parking", window: str = "5m", retention: str = "3650d",
                 fsync: str = "always", push_sites: list[str] | None = None, feeds: str = "") -> Path:
    """A one-dataset config (dataset id = pilot), no feeds unless given, optional push source."""
    lines = [
        "[server]", 'log_level = "warning"', f'fsync = "{fsync}"', "max_push_body = 16777216", "",
        "[[datasets]]", f'id = "{pilot}"', f'pilot = "{pilot}"', 'title = { en = "bench" }',
        'description = { en = "bench" }', f'window = "{window}"', 'grace = "1m"', f'retention = "{retention}"', "",
    ]
    if push_sites:
        lines += ["[[push]]", 'id = "bench"', f'dataset = "{pilot}"', 'key_env = "LDF_BENCH_PUSH_KEY"',
                  "max_records = 100000", "sites = ["]
        lines += [f'  {{ key = "{k}", label = "{k}", capacity = 1000 }},' for k in push_sites]
        lines += ["]", ""]
    path.write_text("\n".join(lines) + "\n" + feeds)
    return path


def site_keys(n: int) -> list[str]:
    return [f"bench/site-{i:04d}" for i in range(n)]


def write_parking_log(data_dir: Path, n: int, *, sites: int = 100, step_ms: int = 60_000,
                      end_ms: int | None = None) -> tuple[int, int]:
    """A parking dataset's durable log holding ``n`` members (``sites`` sites polled every
    ``step_ms``), written straight in the log's record format. Returns (first, last) time."""
    import orjson

    from ldf_server.records import Site
    from ldf_server.store.log import DatasetLog, encode_record
    from ldf_server.timeutil import format_day

    end_ms = end_ms if end_ms is not None else (int(time.time() * 1000) // 60_000) * 60_000 - 10 * 60_000
    steps = -(-n // sites)
    first = end_ms - steps * step_ms
    root = data_dir / "parking"
    log = DatasetLog(root, fsync="never")
    log.append_sites([Site(key=k, label=k, city="bench", capacity=1000) for k in site_keys(sites)])
    log.close()
    (root / "days").mkdir(parents=True, exist_ok=True)
    files: dict[str, object] = {}
    written = 0
    at = time.time()
    statuses = ("spacesAvailable", "almostFull", "full")
    try:
        for s in range(steps):
            t = first + s * step_ms
            day = format_day(t)
            f = files.get(day)
            if f is None:
                f = files[day] = open(root / "days" / f"{day}.log", "ab")
            chunk = []
            for i, key in enumerate(site_keys(sites)):
                if written >= n:
                    break
                vacant = (s * 7 + i * 13) % 1000
                chunk.append(encode_record({"s": key, "t": t, "v": {"vacantSpaces": vacant, "siteStatus": statuses[vacant % 3]}, "a": at}))
                written += 1
            f.write(b"".join(chunk))  # type: ignore[attr-defined]
    finally:
        for f in files.values():
            f.close()  # type: ignore[attr-defined]
    del orjson
    return first, first + (steps - 1) * step_ms


def median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def dump(obj: object) -> str:
    return json.dumps(obj, indent=2)
