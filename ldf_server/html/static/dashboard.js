/* ldf-server dashboard: parking map and history, crowd counts, accessible buildings; live over SSE.
 *
 * Everything comes from this server's own resources, read as plain JSON (JSON-LD compacted with
 * the shared context): /{ds}/latest for the current state, the window pages of /{ds}/view for
 * history, and /{ds}/events (Server-Sent Events) for every new member as it arrives.
 * No inline script and no external request (the page's Content-Security-Policy allows neither).
 */
(function () {
  "use strict";

  const cfg = JSON.parse(document.body.dataset.dashboard);
  const ACCEPT = { headers: { Accept: "application/ld+json" } };
  const HISTORY_WINDOWS = 36; // newest window pages read for the history chart
  const sites = new Map(); // parking site IRI → {label, capacity, lat, lon, vacant, observed, row, marker, ds}
  const history = new Map(); // parking site IRI → {t: [seconds], v: [vacant]}
  const segments = new Map(); // crowd site IRI → {label, counts: Map(key → {n, what, time}), row}
  let map = null;
  let chart = null;
  let selected = null;
  let received = 0;
  let resyncs = 0; // re-reads of `latest` after a gap in the live stream

  /** A path under this server's origin for one of its IRIs (the public base may differ from it). */
  function local(iri) {
    return iri.startsWith(cfg.base + "/") ? cfg.prefix + iri.slice(cfg.base.length) : iri;
  }

  async function getJson(path) {
    const resp = await fetch(local(path), ACCEPT);
    if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
    return resp.json();
  }

  function text(el, value) {
    el.textContent = value === undefined || value === null ? "" : String(value);
    return el;
  }

  function cell(row, value) {
    return text(row.insertCell(), value);
  }

  function shortTerm(value) {
    const s = String(value);
    return s.replace(/^.*[#/]/, "");
  }

  function timeOf(iso) {
    return iso ? iso.replace("T", " ").replace(/:\d\d(\.\d+)?Z$/, "Z") : "";
  }

  // -- parking -------------------------------------------------------------------------------

  function occupancy(site) {
    if (site.vacant === undefined || !site.capacity) return null;
    return Math.max(0, Math.min(1, 1 - site.vacant / site.capacity));
  }

  function colour(occ) {
    if (occ === null) return "#8a8f99";
    if (occ < 0.7) return "#1a9850";
    if (occ < 0.9) return "#f39c12";
    return "#d73027";
  }

  function ensureMap() {
    if (map) return map;
    map = L.map("map", { attributionControl: Boolean(cfg.tiles), zoomSnap: 0.25 });
    if (cfg.tiles) {
      L.tileLayer(cfg.tiles, { maxZoom: 19, attribution: "Map data © OpenStreetMap contributors" }).addTo(map);
    }
    map.setView([51.0, 4.2], 8);
    return map;
  }

  function drawSite(iri) {
    const site = sites.get(iri);
    const occ = occupancy(site);
    const fill = colour(occ);
    if (site.marker) {
      site.marker.setStyle({ fillColor: fill });
      site.marker.getElement()?.setAttribute("data-occupancy", occ === null ? "" : occ.toFixed(2));
      site.marker.setTooltipContent(tooltip(site));
    }
    const cells = site.row.cells;
    text(cells[2], site.vacant);
    text(cells[3], site.capacity);
    text(cells[4], occ === null ? "" : `${Math.round(occ * 100)} %`);
    text(cells[5], timeOf(site.observed));
    site.row.dataset.vacant = site.vacant === undefined ? "" : String(site.vacant);
  }

  function tooltip(site) {
    const span = document.createElement("span");
    const occ = occupancy(site);
    span.textContent = `${site.label}: ${site.vacant ?? "?"} of ${site.capacity ?? "?"} free` +
      (occ === null ? "" : ` (${Math.round(occ * 100)} % full)`);
    return span;
  }

  function addParkingSites(ds, doc) {
    const tbody = document.querySelector("#parking-table tbody");
    const select = document.getElementById("site-select");
    const points = [];
    for (const node of doc.sites || []) {
      const iri = node["@id"];
      const latest = node.latestVersion || {};
      const site = {
        ds: ds.id, label: node.label || shortTerm(iri), capacity: node.totalSpaces, lat: node.lat, lon: node.long,
        vacant: latest.vacantSpaces, observed: latest.observedAt, row: tbody.insertRow(), marker: null,
      };
      site.row.dataset.site = iri;
      const link = document.createElement("a");
      link.href = iri.startsWith(cfg.base + "/") ? local(iri) : iri;
      link.className = "site-label";
      text(link, site.label);
      site.row.insertCell().appendChild(link);
      cell(site.row, ds.title);
      for (let i = 0; i < 4; i++) site.row.insertCell();
      sites.set(iri, site);
      if (typeof site.lat === "number" && typeof site.lon === "number") {
        site.marker = L.circleMarker([site.lat, site.lon], {
          radius: 9, weight: 1.5, color: "#222", fillOpacity: 0.9, fillColor: colour(null), className: "site-marker",
        }).addTo(ensureMap());
        site.marker.bindTooltip(tooltip(site));
        site.marker.on("click", () => select_(iri));
        points.push([site.lat, site.lon]);
      }
      const option = document.createElement("option");
      option.value = iri;
      text(option, `${site.label} (${ds.title})`);
      select.appendChild(option);
      drawSite(iri);
    }
    if (points.length) ensureMap().fitBounds(points, { padding: [20, 20] });
    if (!selected && select.options.length) select_(select.options[0].value);
  }

  function onParkingMember(member) {
    const iri = member.isVersionOf;
    const site = sites.get(iri);
    if (!site || typeof member.vacantSpaces !== "number") return;
    if (!site.observed || member.observedAt >= site.observed) {
      site.vacant = member.vacantSpaces;
      site.observed = member.observedAt;
      drawSite(iri);
      flash(site.row);
    }
    addPoint(iri, member.observedAt, member.vacantSpaces);
    if (iri === selected) redraw();
  }

  function addPoint(iri, observedAt, vacant) {
    const t = Date.parse(observedAt) / 1000;
    if (!Number.isFinite(t)) return;
    let series = history.get(iri);
    if (!series) history.set(iri, (series = { t: [], v: [] }));
    let i = series.t.length;
    while (i > 0 && series.t[i - 1] > t) i--;
    if (i > 0 && series.t[i - 1] === t) return;
    series.t.splice(i, 0, t);
    series.v.splice(i, 0, vacant);
  }

  /** Members of the newest window pages (closed ones are immutable: the browser caches them). */
  async function loadHistory(ds) {
    const view = await getJson(ds.view);
    const days = relationTargets(view);
    const windows = [];
    for (const day of days.slice(-2).reverse()) {
      const node = await getJson(day);
      windows.unshift(...relationTargets(node));
      if (windows.length >= HISTORY_WINDOWS) break;
    }
    const newest = windows.slice(-HISTORY_WINDOWS);
    for (let i = 0; i < newest.length; i += 6) {
      const pages = await Promise.all(newest.slice(i, i + 6).map(getJson));
      for (const page of pages) {
        for (const node of page["@graph"] || []) {
          for (const m of [].concat(node.member || [])) {
            if (typeof m.vacantSpaces === "number") addPoint(m.isVersionOf, m.observedAt, m.vacantSpaces);
          }
        }
      }
    }
    // Start with a site that has a history (a replayed feed may have only its newest record).
    if ((history.get(selected)?.t.length || 0) < 2) {
      const best = [...history.entries()].sort((a, b) => b[1].t.length - a[1].t.length)[0];
      if (best && best[1].t.length > 1) return select_(best[0]);
    }
    redraw();
  }

  function relationTargets(doc) {
    const out = new Set();
    for (const node of doc["@graph"] || [doc]) {
      for (const rel of [].concat(node.relation || [])) if (rel.node) out.add(rel.node);
    }
    return [...out].sort();
  }

  function select_(iri) {
    selected = iri;
    const select = document.getElementById("site-select");
    if (select.value !== iri) select.value = iri;
    redraw();
  }

  function redraw() {
    const el = document.getElementById("chart");
    if (!selected || typeof uPlot === "undefined") return;
    const series = history.get(selected) || { t: [], v: [] };
    const data = [series.t.slice(), series.v.slice()];
    const site = sites.get(selected);
    el.dataset.site = selected;
    el.dataset.points = String(series.t.length);
    if (!chart) {
      chart = new uPlot({
        width: Math.max(300, el.clientWidth - 8), height: 260,
        scales: { x: { time: true, range: (u, min, max) => (min === max ? [min - 3600, max + 600] : [min, max]) }, y: { range: (u, min, max) => [0, Math.max(max || 0, site?.capacity || 0, 1)] } },
        series: [{}, { label: "vacant spaces", stroke: "#0b5cad", width: 2, fill: "rgba(11,92,173,0.08)" }],
        axes: [{}, { label: "vacant" }],
      }, data, el);
    } else {
      chart.setData(data);
    }
  }

  // -- crowdedness ---------------------------------------------------------------------------

  function addSegments(ds, doc) {
    const tbody = document.querySelector("#crowd-table tbody");
    for (const node of doc.sites || []) {
      const seg = { label: node.label || shortTerm(node["@id"]), counts: new Map(), row: tbody.insertRow() };
      seg.row.dataset.site = node["@id"];
      cell(seg.row, seg.label);
      seg.row.insertCell();
      seg.row.insertCell();
      seg.row.insertCell();
      segments.set(node["@id"], seg);
      for (const obs of [].concat(node.latestObservations || [])) count(seg, obs);
      drawSegment(seg);
    }
  }

  function count(seg, obs) {
    if (typeof obs.hasSimpleResult !== "number") return false;
    const key = `${obs.observedProperty}|${obs.direction || ""}`;
    const old = seg.counts.get(key);
    if (old && old.time > obs.resultTime) return false;
    seg.counts.set(key, { n: obs.hasSimpleResult, what: shortTerm(obs.observedProperty), time: obs.resultTime });
    return true;
  }

  function drawSegment(seg) {
    const counts = [...seg.counts.values()];
    const newest = counts.reduce((a, c) => (c.time > a ? c.time : a), "");
    const current = counts.filter((c) => c.time === newest);
    const total = current.reduce((a, c) => a + c.n, 0);
    text(seg.row.cells[1], counts.length ? total : "");
    text(seg.row.cells[2], current.map((c) => `${c.what} ${c.n}`).join(" · "));
    text(seg.row.cells[3], timeOf(newest));
    seg.row.dataset.count = String(total);
  }

  function onCrowdMember(member) {
    const seg = segments.get(member.hasFeatureOfInterest);
    if (seg && count(seg, member)) {
      drawSegment(seg);
      flash(seg.row);
    }
  }

  // -- accessibility -------------------------------------------------------------------------

  function addBuildings(ds, doc) {
    const list = document.getElementById("buildings");
    for (const node of doc.sites || []) {
      const v = node.latestVersion || {};
      const li = document.createElement("li");
      li.dataset.site = node["@id"];
      const name = document.createElement("a");
      name.href = node["@id"];
      text(name, node.label || shortTerm(node["@id"]));
      li.appendChild(name);
      const widths = ["entranceDoorWidth", "elevatorDoorWidth", "toiletDoorWidth"]
        .filter((k) => typeof v[k] === "number").map((k) => `${k.replace("DoorWidth", "")} ${v[k]} cm`);
      const verdict = v.entranceAccessibility ? shortTerm(v.entranceAccessibility) : "unknown";
      li.appendChild(document.createTextNode(`: ${verdict}${widths.length ? " (" + widths.join(", ") + ")" : ""}`));
      li.dataset.verdict = verdict;
      list.appendChild(li);
      if (typeof node.lat === "number" && typeof node.long === "number") {
        L.circleMarker([node.lat, node.long], {
          radius: 6, weight: 2, color: "#5b2a86", fillColor: "#fff", fillOpacity: 1, className: "building-marker",
        }).bindTooltip(li.textContent).addTo(ensureMap());
      }
    }
  }

  // -- live ----------------------------------------------------------------------------------

  function flash(row) {
    row.classList.remove("updated");
    void row.offsetWidth; // restart the animation
    row.classList.add("updated");
  }

  function status(state, label) {
    const el = document.getElementById("live-status");
    el.dataset.state = state;
    text(el, label);
  }

  /** After a gap (members this page missed while away), the current state from `latest` fills it in. */
  async function resync(ds, handler, siteTerm, latestTerm) {
    try {
      const doc = await getJson(ds.latest);
      for (const node of doc.sites || []) {
        for (const member of [].concat(node[latestTerm] || [])) handler({ ...member, [siteTerm]: node["@id"] });
      }
      resyncs += 1;
      document.body.dataset.resyncs = String(resyncs);
    } catch (e) {
      console.warn("dashboard: could not re-read", ds.latest, e && e.message);
    }
  }

  function subscribe(ds, handler, siteTerm, latestTerm) {
    const source = new EventSource(local(ds.events));
    source.addEventListener("open", () => status("live", "live"));
    source.addEventListener("error", () => status("connecting", "reconnecting…"));
    source.addEventListener("member", (event) => {
      let member;
      try {
        member = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      received += 1;
      text(document.getElementById("live-count"), received);
      handler(member);
    });
    // Members were missed while away (the server's buffer moved on): re-read the current state.
    source.addEventListener("gap", () => resync(ds, handler, siteTerm, latestTerm));
  }

  async function start() {
    ensureMap();
    document.getElementById("site-select").addEventListener("change", (e) => select_(e.target.value));
    const jobs = [];
    for (const ds of cfg.datasets) {
      if (ds.pilot === "parking") {
        jobs.push(getJson(ds.latest).then((doc) => {
          addParkingSites(ds, doc);
          subscribe(ds, onParkingMember, "isVersionOf", "latestVersion");
          return loadHistory(ds);
        }));
      } else if (ds.pilot === "crowdedness") {
        jobs.push(getJson(ds.latest).then((doc) => { addSegments(ds, doc); subscribe(ds, onCrowdMember, "hasFeatureOfInterest", "latestObservations"); }));
      } else if (ds.pilot === "accessibility") {
        jobs.push(getJson(ds.latest).then((doc) => addBuildings(ds, doc)));
      }
    }
    const results = await Promise.allSettled(jobs);
    const failed = results.filter((r) => r.status === "rejected");
    document.body.dataset.loaded = failed.length ? "partial" : "yes";
    for (const f of failed) console.warn("dashboard:", f.reason && f.reason.message);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
