"""The container image, without a Docker engine: the Dockerfile's rules, and its install steps
replayed in a fresh virtual environment from only the files ``.dockerignore`` lets in.

What cannot be tested here: the base image and downloading the dependencies from PyPI (the
replay is offline, so it takes them from the test environment, never the package itself).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.dockerfile import DockerIgnore, Stage, env_pairs, exec_form, stages

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
IGNORE = DockerIgnore.parse((ROOT / ".dockerignore").read_text())
BUILD, RUNTIME = stages(DOCKERFILE)
VENV = "/opt/ldf-server"  # where the build stage installs, and the runtime copies from


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def copies(stage: Stage) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context (not ``--from`` another stage)."""
    out = []
    for args in stage.all("COPY"):
        words = args.split()
        if any(w.startswith("--from") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        out.append((words[:-1], words[-1]))
    return out


def test_two_stages_and_only_the_environment_crosses():
    assert BUILD.name == "build" and BUILD.base == RUNTIME.base, "same Python in both stages: the venv links to it"
    crossing = [a for a in RUNTIME.all("COPY") if a.startswith("--from")]
    assert crossing == [f"--from=build {VENV} {VENV}"]
    assert not any("pip" in run for run in RUNTIME.all("RUN")), "nothing is installed in the runtime stage"


def test_runs_as_a_non_root_user():
    users = RUNTIME.all("USER")
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and (not gid or int(gid) >= 1000), "numeric, so Kubernetes can verify runAsNonRoot"
    useradd = " ".join(RUNTIME.all("RUN"))
    assert f"--uid {uid}" in useradd and f"chown {users[0]} /var/lib/ldf-server" in useradd
    keywords = [kw for kw, _ in RUNTIME.instructions]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")


def test_healthcheck_probes_readiness_with_the_module():
    (check,) = RUNTIME.all("HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert exec_form(command) == ["python", "-m", "ldf_server.healthcheck"]
    assert "--start-period=" in options and "--timeout=" in options


def test_config_and_data_are_volumes_and_settings_come_from_the_environment():
    env: dict[str, str] = {}
    for args in RUNTIME.all("ENV"):
        env.update(env_pairs(args))
    volumes = exec_form(RUNTIME.all("VOLUME")[0])
    assert sorted(volumes) == ["/etc/ldf-server", "/var/lib/ldf-server"]
    assert env["LDF_DATA_DIR"] == "/var/lib/ldf-server"
    assert env["LDF_CONFIG"] == "/etc/ldf-server/config.toml"
    assert env["LDF_HOST"] == "0.0.0.0"
    assert RUNTIME.all("EXPOSE") == [env["LDF_PORT"]]
    assert env["PATH"].startswith(f"{VENV}/bin:")
    assert ("config/default.toml", "/etc/ldf-server/config.toml") in [(s[0], d) for s, d in copies(RUNTIME)]


def test_every_copy_is_in_the_context_and_the_context_holds_nothing_else():
    context = IGNORE.context(ROOT)
    for stage in (BUILD, RUNTIME):
        for sources, _ in copies(stage):
            for source in sources:
                assert (ROOT / source).exists(), source
                assert any(f == source or f.startswith(source.rstrip("/") + "/") for f in context), \
                    f"COPY {source}: .dockerignore leaves it out of the build context"
    tops = {f.split("/")[0] for f in context}
    assert tops == {"pyproject.toml", "README.md", "ldf_server", "vocabularies", "config"}, tops
    assert "config/default.toml" in context and "config/flanders.toml" not in context
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in context)
    assert IGNORE.included("ldf_server/data/simulated_garages.json")
    assert not IGNORE.included(".venv/bin/python") and not IGNORE.included("tests/test_image.py")


def offline_dependencies(tmp: Path) -> Path:
    """A directory with the test environment's installed packages, except this package itself:
    the replayed ``pip install`` finds its dependencies there instead of on PyPI."""
    deps = tmp / "deps"
    deps.mkdir()
    site = Path(sysconfig.get_paths()["purelib"])
    for entry in site.iterdir():
        name = entry.name.lower()
        if "ldf_server" in name or "ldf-server" in name or name.endswith(".pth") or name.startswith(("pip", "_distutils")):
            continue
        (deps / entry.name).symlink_to(entry)
    return deps


def replay_build(tmp: Path) -> Path:
    """Run the build stage's WORKDIR, COPY and RUN lines under ``tmp``; returns the venv."""
    context = tmp / "context"
    for rel in IGNORE.context(ROOT):
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, context / rel)
    venv = tmp / "venv"
    deps = offline_dependencies(tmp)
    workdir = tmp
    for keyword, args in BUILD.instructions:
        if keyword == "WORKDIR":
            workdir = tmp / args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif keyword == "COPY":
            *sources, dest = args.split()
            for source in sources:
                target = workdir / dest / Path(source).name if dest.endswith("/") else workdir / dest
                if (context / source).is_dir():
                    shutil.copytree(context / source, target)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(context / source, target)
        elif keyword == "RUN":
            command = args.replace(VENV, str(venv))
            command = command.replace("python -m venv", f"{shlex.quote(sys.executable)} -m venv")
            command = command.replace("pip install", "pip install --no-index --no-build-isolation")
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("PIP_")}
            proc = subprocess.run(["/bin/sh", "-c", command], cwd=workdir, env=env,
                                  capture_output=True, text=True, timeout=240)
            assert proc.returncode == 0, f"RUN {args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            if (venv / "pyvenv.cfg").exists() and not (deps / "linked").exists():
                (deps / "linked").touch()
                purelib = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                         capture_output=True, text=True, check=True).stdout.strip()
                Path(purelib, "offline-test-deps.pth").write_text(str(deps) + "\n")
        else:
            pytest.fail(f"the replay does not know {keyword}: keep the build stage to WORKDIR, COPY and RUN")
    return venv


def test_install_steps_build_a_working_server(tmp_path):
    venv = replay_build(tmp_path)
    etc, data = tmp_path / "etc" / "ldf-server", tmp_path / "data"
    etc.mkdir(parents=True)
    data.mkdir()
    shutil.copy2(tmp_path / "context" / "config" / "default.toml", etc / "config.toml")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("LDF_", "PYTHON", "VIRTUAL_ENV"))}
    for args in RUNTIME.all("ENV"):
        for key, value in env_pairs(args).items():
            value = value.replace("$PATH", env.get("PATH", "/usr/bin:/bin"))
            env[key] = value.replace(VENV, str(venv)).replace("/etc/ldf-server", str(etc)).replace("/var/lib/ldf-server", str(data))
    port = free_port()
    env.update({
        "LDF_HOST": "127.0.0.1", "LDF_PORT": str(port),  # tests listen on loopback only
        "LDF_FEEDS__SIMULATOR__OPTIONS__BACKFILL": "1h",  # a shorter history, set the way an operator would
        "LDF_FEEDS__PEOPLE_COUNTERS__OPTIONS__BACKFILL": "1h",
    })

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=data, env=env, capture_output=True, text=True, timeout=60)

    where = run("python", "-c", "import ldf_server, shutil; print(ldf_server.__file__); print(shutil.which('ldf-server'))")
    module, script = where.stdout.split()
    assert module.startswith(str(venv)) and script == str(venv / "bin" / "ldf-server"), where
    assert "LDF_<SECTION>__<KEY>" in run("ldf-server", "--help").stdout
    assert run("ldf-server", "--check").returncode == 0

    (check,) = RUNTIME.all("HEALTHCHECK")
    healthcheck = exec_form(check.partition(" CMD ")[2])
    assert run(*healthcheck).returncode == 1, "nothing listens yet"
    entrypoint = exec_form(RUNTIME.all("ENTRYPOINT")[0])
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(entrypoint, cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            probe = run(*healthcheck)
            if probe.returncode == 0 or server.poll() is not None:
                break
            time.sleep(0.1)
        assert probe.returncode == 0, probe.stdout + (tmp_path / "server.log").read_text()[-3000:]
        for path in ("/", "/parking/latest", "/accessibility/latest", "/context.jsonld", "/parking/shape"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
                assert resp.status == 200 and len(resp.read()) > 100, path
        assert any((data / "parking" / "days").glob("*.log")), "the durable log is written to the data volume"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
        log.close()
    assert code == 0
