"""The dashboard and a page view in a real browser: headless Chromium (Debian's package) driven by Playwright.

A server on 127.0.0.1 holds all three pilots (seeded by a fake clock). The browser loads the
dashboard, sees every parking site on the map and in the table, a history chart, the crowd
counts and the buildings; a new poll of the parking feed must then reach the page by itself
(Server-Sent Events), and a window page's view must list that page's members. The console
must stay free of errors (which includes any script or Content-Security-Policy violation and
any failed request), and screenshots go to ``test-output/browser/``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ldf_server.timeutil import format_instant
from tests.support.clock import FakeClock
from tests.support.live import live_server
from tests.support.pilots import NOW, PARKING, poll, seed, three_pilots_config, three_pilots_state

CHROMIUM = "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[1] / "test-output" / "browser"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
TIMEOUT_MS = 20_000


def chromium() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not path:
        pytest.fail("Chromium is not installed: ./scripts/test installs the Debian package 'chromium' (as root)")
    return path


async def test_dashboard_and_page_view_in_chromium():
    playwright_api = pytest.importorskip("playwright.async_api", reason="install the test extra: pip install -e '.[test]'")
    clock = FakeClock(NOW)
    OUTPUT.mkdir(parents=True, exist_ok=True)

    def build(base_url: str):  # type: ignore[no-untyped-def]
        config = three_pilots_config(base_url, zone_count=12)
        return config, three_pilots_state(config, clock)

    async with live_server(build) as (base, state, requests):
        await seed(state)
        parking = state.streams[PARKING].store
        site_count = len(parking.sites)
        crowd_count = len(state.streams["crowds"].store.sites)
        building_count = len(state.streams["accessibility"].store.sites)

        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium(), args=LAUNCH_ARGS, headless=True)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1500})
                problems: list[str] = []
                page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}")
                        if not r.url.endswith("/events") else None)  # streams are cut when the page goes
                page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)

                # -- the dashboard ---------------------------------------------------------------
                resp = await page.goto(base + "/", wait_until="load")
                assert resp is not None and resp.status == 200
                assert resp.headers["content-type"].startswith("text/html")
                assert "script-src 'self'" in resp.headers["content-security-policy"]
                await page.wait_for_selector("body[data-loaded]", timeout=TIMEOUT_MS)
                assert await page.get_attribute("body", "data-loaded") == "yes", problems
                assert await page.locator("#parking-table tbody tr").count() == site_count
                assert await page.locator("path.site-marker").count() == site_count  # every garage has a position
                assert await page.locator("#crowd-table tbody tr").count() == crowd_count
                assert await page.locator("#buildings li").count() == building_count
                # every site is coloured by its occupancy (no grey "no data" marker after seeding)
                fills = await page.eval_on_selector_all("path.site-marker", "els => els.map(e => e.getAttribute('fill'))")
                assert fills and all(f in ("#1a9850", "#f39c12", "#d73027") for f in fills), fills
                # the history chart of the selected site is drawn from the window pages
                await page.wait_for_function("Number(document.getElementById('chart').dataset.points) > 3", timeout=TIMEOUT_MS)
                assert await page.locator("#chart canvas").count() >= 1
                first_site = await page.get_attribute("#parking-table tbody tr:first-child", "data-site")
                table = await page.inner_text("#parking-table")
                assert all(site.label in table for site in parking.sites.values()), table

                # -- a live update arrives ---------------------------------------------------------
                await page.wait_for_selector("#live-status[data-state=live]", timeout=TIMEOUT_MS)
                before = parking.sequence
                points_before = int(await page.get_attribute("#chart", "data-points") or 0)
                clock.advance(300)
                await poll(state, PARKING)
                assert parking.sequence > before, "precondition: the poll stored new members"
                key = next(k for k, s in parking.sites.items() if (s.iri or f"{base}/{PARKING}/sites/{k}") == first_site)
                newest = parking.latest[key][""]
                stamp = format_instant(newest.time).replace("T", " ")[:16] + "Z"  # shown to the minute
                await page.wait_for_function(
                    "([site, vacant]) => document.querySelector(`#parking-table tr[data-site='${site}']`).dataset.vacant === vacant",
                    arg=[first_site, str(newest.values["vacantSpaces"])], timeout=TIMEOUT_MS,
                )
                row = await page.inner_text(f"#parking-table tr[data-site='{first_site}']")
                assert stamp in row, (stamp, row)  # the row shows the new observation's time
                assert int(await page.inner_text("#live-count")) >= parking.sequence - before
                await page.wait_for_function(f"Number(document.getElementById('chart').dataset.points) > {points_before}",
                                             timeout=TIMEOUT_MS)
                await page.screenshot(path=str(OUTPUT / "dashboard.png"), full_page=True)

                # -- a page view ----------------------------------------------------------------------
                stream = state.streams[PARKING]
                start = stream.store.window_starts()[-3]
                members = stream.store.window(start).members
                resp = await page.goto(f"{base}/{PARKING}/windows/{format_instant(start)}", wait_until="load")
                assert resp is not None and resp.status == 200
                assert "immutable" in resp.headers["cache-control"]
                rows = page.locator("tr[data-id*='/members/']")
                assert await rows.count() == len(members)
                text = await page.inner_text("main")
                assert str(members[0].values["vacantSpaces"]) in text
                formats = await page.eval_on_selector_all("a.format", "els => els.map(e => e.dataset.format)")
                assert formats == ["jsonld", "json", "nq", "trig", "ttl", "nt"]
                await page.screenshot(path=str(OUTPUT / "window-page.png"), full_page=True)
                # the link to the Turtle of the same page gives Turtle (a browser would download it)
                href = await page.get_attribute("a.format[data-format=ttl]", "href")
                kind = await page.evaluate("href => fetch(href).then(r => r.headers.get('content-type'))", href)
                assert kind.startswith("text/turtle"), kind
                assert problems == [], problems
            finally:
                await browser.close()
    assert (OUTPUT / "dashboard.png").stat().st_size > 10_000
    assert not [r for r in requests.failures() if not r[1].endswith("/events")], requests.failures()


async def test_dashboard_refills_from_latest_after_a_gap_in_the_live_stream():
    """A browser that reconnects after the server's buffer moved on gets ``event: gap``: it must
    re-read ``latest`` rather than keep showing what it had (the members it missed never arrive)."""
    import asyncio

    playwright_api = pytest.importorskip("playwright.async_api", reason="install the test extra: pip install -e '.[test]'")
    clock = FakeClock(NOW)

    def build(base_url: str):  # type: ignore[no-untyped-def]
        config = three_pilots_config(base_url, zone_count=4)
        return config, three_pilots_state(config, clock)

    async with live_server(build) as (base, state, _):
        await seed(state)
        parking = state.streams[PARKING].store
        missed = asyncio.Event()

        async def gap_instead_of_members(route):  # type: ignore[no-untyped-def]
            if f"/{PARKING}/events" not in route.request.url:
                await route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body="retry: 600000\n\n")
                return
            await missed.wait()  # the members below are stored while this stream is "away"
            await route.fulfill(status=200, headers={"Content-Type": "text/event-stream"},
                                body='retry: 600000\n\nevent: gap\ndata: {"firstAvailable": 999}\n\n')

        async with playwright_api.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium(), args=LAUNCH_ARGS, headless=True)
            try:
                page = await browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                await page.route("**/events*", gap_instead_of_members)
                await page.goto(base + "/", wait_until="load")
                await page.wait_for_selector("body[data-loaded=yes]", timeout=TIMEOUT_MS)
                site = await page.get_attribute("#parking-table tbody tr:first-child", "data-site")
                shown = await page.get_attribute(f"#parking-table tr[data-site='{site}']", "data-vacant")

                key = next(k for k, s in parking.sites.items() if (s.iri or f"{base}/{PARKING}/sites/{k}") == site)
                for _ in range(12):  # polls until the first site's value differs from what is shown
                    clock.advance(300)
                    await poll(state, PARKING)
                    if str(parking.latest[key][""].values["vacantSpaces"]) != shown:
                        break
                newest = str(parking.latest[key][""].values["vacantSpaces"])
                assert newest != shown, "precondition: the site's value changed while the stream was away"
                missed.set()
                await page.wait_for_function("() => document.body.dataset.resyncs === '1'", timeout=TIMEOUT_MS)
                assert await page.get_attribute(f"#parking-table tr[data-site='{site}']", "data-vacant") == newest
                assert errors == []
            finally:
                await browser.close()
