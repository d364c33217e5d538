"""Every setting can come from an environment variable: LDF_<SECTION>__<KEY>, entries by id."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ldf_server.config import ConfigError, ServerConfig, config_from_dict, load_config
from ldf_server.config_env import apply_environment, overrides_from, parse_value

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "config" / "default.toml"


def load(env: dict[str, str], **kw):
    return load_config(DEFAULT, env=env, **kw)


def feed(config, feed_id: str):
    return next(f for f in config.feeds if f.id == feed_id)


def test_server_settings_by_long_name():
    config = load({"LDF_SERVER__PORT": "9000", "LDF_SERVER__BASE_URL": "https://data.stad.gent/ldf",
                   "LDF_SERVER__FSYNC": "interval", "LDF_SERVER__SSE_HEARTBEAT": "5s", "LDF_SERVER__MAX_HEADERS": "64"})
    assert config.server.port == 9000
    assert config.server.public_base == "https://data.stad.gent/ldf"
    assert config.server.fsync == "interval"
    assert config.server.sse_heartbeat == 5.0
    assert config.server.max_headers == 64


# One valid value per [server] setting: a setting added without an entry here fails this test,
# so every setting stays reachable from the environment.
SERVER_VALUES = {
    "host": ("0.0.0.0", "0.0.0.0"), "port": ("8081", 8081), "base_url": ("https://x.example/a", "https://x.example/a"),
    "data_dir": ("/var/lib/x", "/var/lib/x"), "fsync": ("never", "never"), "fsync_interval": ("2s", 2.0),
    "log_level": ("debug", "debug"), "max_push_body": ("2048", 2048), "max_request_line": ("1024", 1024),
    "max_header_size": ("1024", 1024), "max_headers": ("32", 32), "max_connections": ("10", 10),
    "header_timeout": ("3s", 3.0), "body_timeout": ("4s", 4.0), "keepalive_timeout": ("5s", 5.0),
    "shutdown_timeout": ("6s", 6.0), "sse_heartbeat": ("7s", 7.0), "sse_buffer": ("9", 9),
    "map_tiles": ("https://tiles.example/{z}/{x}/{y}.png", "https://tiles.example/{z}/{x}/{y}.png"),
    "workers": ("3", 3),
}


def test_every_server_setting_is_reachable():
    assert set(SERVER_VALUES) == set(ServerConfig.model_fields)
    env = {f"LDF_SERVER__{key.upper()}": text for key, (text, _) in SERVER_VALUES.items()}
    server = load(env).server
    for key, (_, value) in SERVER_VALUES.items():
        assert getattr(server, key) == value, key


def test_short_names_still_work_and_the_long_name_wins():
    config = load({"LDF_PORT": "9001", "LDF_DATA_DIR": "/srv/d", "LDF_HOST": "0.0.0.0", "LDF_LOG_LEVEL": "warning"})
    assert (config.server.port, config.server.data_dir, config.server.host, config.server.log_level) == (
        9001, "/srv/d", "0.0.0.0", "warning")
    assert load({"LDF_PORT": "9001", "LDF_SERVER__PORT": "9002"}).server.port == 9002


def test_command_line_wins_over_environment():
    assert load({"LDF_SERVER__PORT": "9002"}, overrides={"port": 9003}).server.port == 9003


def test_entries_are_addressed_by_id():
    config = load({
        "LDF_FEEDS__GENT_REPLAY__INTERVAL": "1m",          # id "gent-replay": '-' written '_'
        "LDF_FEEDS__SIMULATOR__OPTIONS__SEED": "7",
        "LDF_FEEDS__SIMULATOR__OPTIONS__CITIES": '["mechelen", "leuven"]',
        "LDF_FEEDS__PEOPLE_COUNTERS__ENABLED": "false",
        "LDF_DATASETS__PARKING__RETENTION": "30d",
        "LDF_DATASETS__CROWDEDNESS__TITLE__NL": "Drukte",
    })
    assert feed(config, "gent-replay").interval == 60.0
    assert feed(config, "simulator").options["seed"] == 7
    assert feed(config, "simulator").options["cities"] == ["mechelen", "leuven"]
    assert feed(config, "people-counters").enabled is False
    assert config.dataset("parking").retention == 30 * 86400
    assert config.dataset("crowdedness").title["nl"] == "Drukte"
    assert config.dataset("crowdedness").title["en"] == "Crowdedness in the city"  # the rest of the table stays


def test_push_sources_and_new_tables():
    raw = tomllib.loads(DEFAULT.read_text())
    raw.pop("catalog")
    raw["push"] = [{"id": "gent-counters", "dataset": "crowdedness", "key_env": "K"}]
    config = config_from_dict(raw, env={
        "LDF_PUSH__GENT_COUNTERS__MAX_RECORDS": "10",
        "LDF_PUSH__GENT_COUNTERS__SITES": '[{ key = "gent/a", label = "A" }]',
        "LDF_CATALOG__PUBLISHER__NAME": "Stad Gent",
        "LDF_CATALOG__PUBLISHER__IRI": "https://stad.gent/id/stad",
    })
    assert config.push[0].max_records == 10
    assert [s.key for s in config.push[0].sites] == ["gent/a"]
    assert config.catalog.publisher is not None and config.catalog.publisher.name == "Stad Gent"


def test_text_settings_are_taken_verbatim():
    """A publisher named "2017" stays text; TOML would have read it as a number."""
    config = load({"LDF_CATALOG__PUBLISHER__NAME": "2017", "LDF_CATALOG__CONTACT__EMAIL": "a@b.be",
                   "LDF_FEEDS__GENT_REPLAY__OPTIONS__RECORDING": "123"})
    assert config.catalog.publisher.name == "2017"
    assert config.catalog.contact.email == "a@b.be"
    assert feed(config, "gent-replay").options["recording"] == "123"  # an option whose type is text


def test_values_are_toml_where_they_parse():
    assert parse_value("8080") == 8080
    assert parse_value("1.5") == 1.5
    assert parse_value("true") is True
    assert parse_value('["a", 1]') == ["a", 1]
    assert parse_value('{ a = 1 }') == {"a": 1}
    assert parse_value('"quoted"') == "quoted"
    assert parse_value("30s") == "30s"
    assert parse_value("https://x.example/a?b=c") == "https://x.example/a?b=c"
    assert parse_value("1\nx = 2") == "1\nx = 2"  # never smuggles a second key in
    assert parse_value("8080", verbatim=True) == "8080"


def test_other_variables_are_ignored_and_empty_values_count_as_unset():
    env = {"LDF_CONFIG": "/x.toml", "LDF_PUSH_KEY_GENT": "secret", "PATH": "/bin", "LDF_SERVER__PORT": ""}
    assert overrides_from(env) == []
    assert load(env).server.port == 8080


def test_the_parsed_file_is_not_changed():
    raw = tomllib.loads(DEFAULT.read_text())
    before = repr(raw)
    out, origins = apply_environment(raw, {"LDF_SERVER__PORT": "1", "LDF_FEEDS__SIMULATOR__OPTIONS__SEED": "3"})
    assert repr(raw) == before
    assert out["server"]["port"] == 1
    assert origins == {"server.port": "LDF_SERVER__PORT", "feeds[0].options.seed": "LDF_FEEDS__SIMULATOR__OPTIONS__SEED"}


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"LDF_SERVER__PORT": "eighty"}, "server.port: Input should be a valid integer"),
        ({"LDF_PORT": "eighty"}, "(from environment variable LDF_PORT)"),
        ({"LDF_SERVER__PORT": "70000"}, "server.port: Input should be less than or equal to 65535"),
        ({"LDF_FEEDS__SIMULATOR__INTERVAL": "soon"}, "feeds[0].interval: 'soon' is not a duration"),
        ({"LDF_DATASETS__PARKING__WINDOW": "7m"}, "datasets[0].window: must be a whole number"),
        ({"LDF_SERVER__FSYNC": "sometimes"}, "server.fsync: Input should be 'always', 'interval' or 'never'"),
        ({"LDF_SERVER__PROT": "1"}, "server.prot: Extra inputs are not permitted"),
        ({"LDF_FEEDS__SIMULATOR__OPTIONS__SEED": "x"}, "feeds[0].options.seed: Input should be a valid integer"),
        ({"LDF_CATALOG__PUBLISHER__IRI": "ftp://x"}, "catalog.publisher"),
    ],
)
def test_bad_values_name_the_key_and_the_variable(env, expected):
    with pytest.raises(ConfigError) as info:
        load(env)
    message = str(info.value)
    assert expected in message
    name = next(iter(env))
    assert f"(from environment variable {name})" in message


@pytest.mark.parametrize(
    "env, expected",
    [
        ({"LDF_FEEDS__NOPE__INTERVAL": "1m"}, "LDF_FEEDS__NOPE__INTERVAL: the config file has no feed with id 'nope' (known: simulator, gent-replay"),
        ({"LDF_DATASETS__BIKES__WINDOW": "1h"}, "no dataset with id 'bikes'"),
        ({"LDF_PUSH__X__MAX_RECORDS": "1"}, "no push source with id 'x' (known: gent-counters)"),
        ({"LDF_FEEDZ__SIMULATOR__INTERVAL": "1m"}, "LDF_FEEDZ__SIMULATOR__INTERVAL: no section 'feedz'"),
        ({"LDF_FEEDS__SIMULATOR": "1m"}, "name an entry by its id and a key"),
        ({"LDF_server__port": "1"}, "write LDF_<SECTION>__<KEY> in upper case"),
        ({"LDF_SERVER____PORT": "1"}, "not a setting name"),
        ({"LDF_SERVER__PORT__X": "1"}, "server.port is a value, not a table"),
    ],
)
def test_variables_that_name_nothing_are_errors(env, expected):
    with pytest.raises(ConfigError) as info:
        load(env)
    assert expected in str(info.value)


def test_cli_reports_a_bad_variable_and_exits_2(tmp_path):
    env = {**os.environ, "LDF_FEEDS__SIMULATOR__INTERVAL": "0s"}
    proc = subprocess.run([sys.executable, "-m", "ldf_server", "--config", str(DEFAULT), "--check"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert "feeds[0].interval" in proc.stderr and "LDF_FEEDS__SIMULATOR__INTERVAL" in proc.stderr
