"""The bundled default config, run as a real process: all pilots offline, live updates, SIGHUP, clean stop."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The default config with shorter intervals and history (so the test is quick), as a subprocess."""
    tmp = tmp_path_factory.mktemp("default")
    text = (ROOT / "config" / "default.toml").read_text()
    text = re.sub(r'interval = "\d+[sm]"', 'interval = "1s"', text)
    text = text.replace('backfill = "24h"', 'backfill = "2h"')
    # The accessibility export keeps its hourly interval and is a copy the SIGHUP test edits.
    csv = tmp / "buildings.csv"
    csv.write_bytes((ROOT / "ldf_server" / "data" / "accessibility_buildings.csv").read_bytes())
    assert 'adapter = "accessibility-csv"\ndataset = "accessibility"\ninterval = "1h"' in text
    text = text.replace('path = "accessibility_buildings.csv"', f'path = "{csv}"')
    config = tmp / "config.toml"
    config.write_text(text)
    port = free_port()
    log = (tmp / "server.log").open("w")
    env = {**os.environ, "LDF_PORT": str(port), "LDF_DATA_DIR": str(tmp / "data"), "LDF_HOST": "127.0.0.1"}
    env.pop("LDF_BASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "ldf_server", "--config", str(config)], cwd=tmp, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if get_json(base + "/health/ready")["status"] in ("ok", "degraded"):
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                raise AssertionError((tmp / "server.log").read_text())
            time.sleep(0.1)
        else:
            raise AssertionError("server did not become ready")
        yield base, proc, tmp / "server.log"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def test_catalog_lists_every_dataset_with_data(server):
    base, _, _ = server
    catalog = get_json(base + "/")
    datasets = {d["@id"].removeprefix(base + "/").split("#")[0] for d in catalog["dataset"]}
    pilots = {get_json(f"{base}/{ds}")["@graph"][0]["@id"] for ds in datasets}
    assert len(pilots) == len(datasets) == 3
    kinds = {get_json(f"{base}/{ds}").get("@graph", [{}])[0].get("pilot", ds) for ds in datasets}
    assert {"parking", "crowdedness", "accessibility"} <= datasets | kinds, datasets
    for ds in datasets:
        latest = get_json(f"{base}/{ds}/latest")
        assert latest["sites"], ds
        assert any("latestVersion" in s or "latestObservations" in s for s in latest["sites"]), ds


def test_data_is_live(server):
    base, _, _ = server

    def newest(ds: str) -> str:
        doc = get_json(f"{base}/{ds}/latest")
        times = []
        for site in doc["sites"]:
            for m in [site.get("latestVersion")] + site.get("latestObservations", []):
                if m:
                    times.append(m.get("observedAt") or m.get("resultTime"))
        return max(times)

    before = {ds: newest(ds) for ds in ("parking", "crowdedness")}
    deadline = time.time() + 20
    while time.time() < deadline:
        if all(newest(ds) > before[ds] for ds in before):
            break
        time.sleep(0.3)
    assert all(newest(ds) > before[ds] for ds in before), before


def test_closed_pages_exist_at_once(server):
    base, _, _ = server
    view = get_json(base + "/parking/view")
    hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    req = urllib.request.Request(f"{base}/parking/view?time={hour_ago}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert "immutable" in resp.headers["Cache-Control"]
        page = json.loads(resp.read())
    assert page["@graph"][0]["member"] and view["@graph"][1]["relation"]


def test_sighup_rereads_the_accessibility_export_at_once(server):
    base, proc, log = server
    csv = log.parent / "buildings.csv"

    def widths() -> dict[str, int]:
        latest = get_json(base + "/accessibility/latest")
        return {s["label"]: s["latestVersion"]["entranceDoorWidth"] for s in latest["sites"] if "latestVersion" in s}

    before = widths()
    assert before["Stadhuis Gent"] == 120
    text = csv.read_text()
    assert "Stadhuis Gent,Botermarkt,1,9000,Gent,14914874,1475186,51.05394383327376,3.7227841715683176,PLUS,120," in text
    csv.write_text(text.replace("3.7227841715683176,PLUS,120,", "3.7227841715683176,PLUS,125,"))
    time.sleep(1.1)  # the new version is read at a later second than the first one (members are keyed by time)
    proc.send_signal(signal.SIGHUP)  # the feed's interval is an hour: only the signal can make it read now
    deadline = time.time() + 10
    while widths()["Stadhuis Gent"] != 125 and time.time() < deadline:
        time.sleep(0.2)
    after = widths()
    assert after["Stadhuis Gent"] == 125
    assert {k: v for k, v in after.items() if k != "Stadhuis Gent"} == {k: v for k, v in before.items() if k != "Stadhuis Gent"}
    assert "SIGHUP: polling every feed now" in log.read_text()
    assert proc.poll() is None


def test_sigterm_stops_cleanly(server):
    base, proc, log = server
    served = {ds: d["members"] for ds, d in get_json(base + "/health/ready")["datasets"].items()}
    proc.terminate()
    assert proc.wait(timeout=15) == 0, "SIGTERM is handled: a clean exit, not death by the signal"
    assert "Traceback" not in log.read_text()
    # Everything served before the signal is in the durable log, intact (no torn tail to cut).
    from ldf_server.store.log import read_records

    data = log.parent / "data"
    for ds, members in served.items():
        stored, torn = 0, False
        for path in sorted((data / ds / "days").glob("*.log")):
            result = read_records(path)
            stored += len(result.records)
            torn |= result.torn
        assert stored >= members > 0, (ds, stored, members)
        assert not torn, f"{ds}: the log was flushed whole at shutdown"


def test_a_start_up_that_fails_stops_the_process_with_an_error(tmp_path):
    (tmp_path / "data" / "parking" / "days" / "2026-03-31.log").mkdir(parents=True)  # unreadable log
    env = {**os.environ, "LDF_PORT": str(free_port()), "LDF_DATA_DIR": str(tmp_path / "data"), "LDF_HOST": "127.0.0.1"}
    proc = subprocess.run([sys.executable, "-m", "ldf_server", "--config", str(ROOT / "config" / "default.toml")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "start-up failed" in proc.stderr and "IsADirectoryError" in proc.stderr
