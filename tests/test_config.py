"""Config: the bundled files are valid; a bad file stops the server naming the key and the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ldf_server.config import ConfigError, load_config
from ldf_server.cli import parser

ROOT = Path(__file__).resolve().parent.parent
GOOD = (ROOT / "config" / "default.toml").read_text()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_default_config_is_valid():
    config = load_config(ROOT / "config" / "default.toml", env={})
    pilots = {d.pilot for d in config.datasets}
    assert {"parking", "crowdedness"} <= pilots
    adapters = {f.adapter for f in config.feeds}
    assert {"parking-simulator", "replay", "crowd-simulator"} <= adapters
    sim = next(f for f in config.feeds if f.adapter == "parking-simulator")
    assert sim.options["backfill"] == "24h"


@pytest.mark.parametrize(
    "old, new, where, what",
    [
        ('interval = "30s"', 'interval = "soon"', "feeds[0].interval", "not a duration"),
        ('window = "5m"', 'window = "7m"', "datasets[0].window", "divides a day"),
        ('licence = "cc0"', 'licence = "cc-by"', "datasets[0].licence", "cc0"),
        ('adapter = "parking-simulator"', 'adapter = "parking-simulatr"', "feeds[0].adapter", "unknown adapter"),
        ('dataset = "parking"\ninterval', 'dataset = "parkin"\ninterval', "feeds[0].dataset", "no dataset"),
        ("seed = 2017", "sed = 2017", "feeds[0].options.sed", "Extra inputs"),
        ('cities = ["leuven"', 'cities = ["atlantis"', "feeds[0].options.cities", "unknown cities"),
        ("port = 8080", "port = 99999", "server.port", "less than or equal"),
        ('retention = "7d"', 'retentoin = "7d"', "datasets[0].retentoin", "Extra inputs"),
    ],
)
def test_bad_values_name_the_key(tmp_path, old, new, where, what):
    assert old in GOOD, old
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    message = str(err.value)
    assert where in message and what in message, message


def test_not_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[server\nport = 1"), env={})


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml", env={})


def test_reserved_dataset_id(tmp_path):
    with pytest.raises(ConfigError, match="reserved"):
        load_config(write(tmp_path, GOOD.replace('id = "parking"', 'id = "health"').replace('dataset = "parking"', 'dataset = "health"')), env={})


def test_environment_overrides_file_and_cli_overrides_environment(tmp_path):
    env = {"LDF_PORT": "9001", "LDF_BASE_URL": "https://data.example.be/ldf/", "LDF_DATA_DIR": str(tmp_path / "d")}
    config = load_config(ROOT / "config" / "default.toml", env=env)
    assert config.server.port == 9001
    assert config.server.public_base == "https://data.example.be/ldf"
    assert config.server.data_dir == str(tmp_path / "d")
    config = load_config(ROOT / "config" / "default.toml", env=env, overrides={"port": 9002})
    assert config.server.port == 9002


def test_bad_environment_value_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_config(ROOT / "config" / "default.toml", env={"LDF_PORT": "eighty"})


def test_cli_stops_with_message_and_exit_code(tmp_path):
    path = write(tmp_path, GOOD.replace('interval = "30s"', 'interval = "0s"', 1))
    proc = subprocess.run([sys.executable, "-m", "ldf_server", "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "feeds[0].interval" in proc.stderr and "greater than or equal to 1" in proc.stderr


def test_cli_check_accepts_default(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ldf_server", "--config", str(ROOT / "config" / "default.toml"), "--check"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


def test_help_explains_every_option():
    text = parser().format_help()
    for option in ("--config", "--host", "--port", "--base-url", "--data-dir", "--log-level", "--check"):
        assert option in text
    for action in parser()._actions:
        assert action.help, f"{action.option_strings} has no help"


def test_flanders_config_is_valid_and_holds_no_secrets():
    text = (ROOT / "config" / "flanders.toml").read_text()
    config = load_config(ROOT / "config" / "flanders.toml", env={})
    assert {d.pilot for d in config.datasets} == {"parking", "crowdedness", "accessibility"}
    adapters = {f.adapter for f in config.feeds}
    assert {"ghent-datex2", "ghent-ods-park-and-ride", "kortrijk-parko", "ixor-parkings", "telraam-traffic", "accessibility-csv"} <= adapters
    for feed in config.feeds:
        for key in feed.options:
            assert not any(word in key for word in ("password", "secret", "key", "token")) or key.endswith("_env"), key
    import re

    assert not re.search(r"^\s*(password|secret|token|api_key|key_sha256)\s*=", text, re.M)
