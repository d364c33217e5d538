"""deploy/: the example settings are valid, and compose.yaml, nginx.conf and the Dockerfile agree."""

from __future__ import annotations

import re
from pathlib import Path

from ldf_server.config import load_config
from tests.support.dockerfile import exec_form, stages

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = (DEPLOY / "compose.yaml").read_text()


def example_settings() -> dict[str, str]:
    """Every LDF_ variable in example.env, the commented-out examples included."""
    out = {}
    for line in (DEPLOY / "example.env").read_text().splitlines():
        m = re.match(r"^#?\s*(LDF_[A-Z0-9_]+)=(.*)$", line.strip())
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_every_example_setting_is_valid_for_the_default_config():
    settings = example_settings()
    assert "LDF_SERVER__BASE_URL" in settings and len(settings) >= 10
    config = load_config(ROOT / "config" / "default.toml", env=settings)
    assert config.server.public_base == "https://data.example.be"
    assert config.catalog.publisher is not None and config.catalog.publisher.name == "Stad Voorbeeld"
    assert next(f for f in config.feeds if f.id == "gent-replay").enabled is False
    assert config.dataset("parking").retention == 30 * 86400


def test_compose_nginx_and_image_agree():
    _, runtime = stages((ROOT / "Dockerfile").read_text())
    (port,) = runtime.all("EXPOSE")
    volumes = exec_form(runtime.all("VOLUME")[0])
    upstream = re.search(r"server ([a-z0-9-]+):(\d+);", (DEPLOY / "nginx.conf").read_text())
    assert upstream is not None
    assert upstream.group(2) == port and f"expose: [\"{port}\"]" in COMPOSE
    assert re.search(rf"^  {re.escape(upstream.group(1))}:$", COMPOSE, re.M), "nginx's upstream is the compose service"
    assert ":/etc/ldf-server/config.toml:ro" in COMPOSE and "/etc/ldf-server" in volumes
    assert "ldf-data:/var/lib/ldf-server\n" in COMPOSE.replace("  # the durable log: keep it, back it up", "") \
        and "/var/lib/ldf-server" in volumes
    for mounted in re.findall(r"- (\./[\w.-]+|\.\./[\w./-]+|\$\{\w+:-[^}]+\}):", COMPOSE):
        path = mounted.split(":-", 1)[1].rstrip("}") if mounted.startswith("${") else mounted
        if path != "./backups":  # created by the first backup
            assert (DEPLOY / path).exists(), f"compose.yaml mounts {path}, which does not exist"
    assert "build: .." in COMPOSE and (DEPLOY / ".." / "Dockerfile").exists()
