// cratewatch staff page: identify, catalog, browse-vs-buy. Plain DOM, no framework, no CDN.
"use strict";

const KEY_ITEM = "cratewatch-api-key";
const $ = (id) => document.getElementById(id);
let keyWaiters = [];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

// The key lives in sessionStorage (this tab only) and travels as a header, never in a URL.
function askForKey() {
  $("key-form").hidden = false;
  $("key-input").focus();
  return new Promise((resolve) => keyWaiters.push(resolve));
}

$("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY_ITEM, $("key-input").value);
  $("key-input").value = "";
  $("key-form").hidden = true;
  $("forget-key").hidden = false;
  keyWaiters.splice(0).forEach((resolve) => resolve());
});

$("forget-key").addEventListener("click", () => {
  sessionStorage.removeItem(KEY_ITEM);
  $("forget-key").hidden = true;
});

async function api(path, options = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = new Headers(options.headers || {});
    const key = sessionStorage.getItem(KEY_ITEM);
    if (key) headers.set("X-API-Key", key);
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401 || attempt > 2) return response;
    sessionStorage.removeItem(KEY_ITEM);
    await askForKey();
  }
}

async function json(path, options) {
  const response = await api(path, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : {};
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    throw new Error(`${response.status}: ${detail || response.statusText}`);
  }
  return body;
}

function thumb(albumId, size = 64) {
  return el("img", { class: "thumb", alt: "", loading: "lazy",
    src: `/catalog/${encodeURIComponent(albumId)}/thumbnail?size=${size}` });
}

// ---- status ----
async function refreshStatus() {
  try {
    const r = await fetch("/readyz");
    const body = await r.json();
    $("status").textContent = r.ok ? `ready · ${body.albums} albums · model ${body.model_version}`
      : `${body.status}…`;
    return r.ok;
  } catch (err) {
    $("status").textContent = "service unreachable";
    return false;
  }
}

// ---- identify ----
async function identify(file) {
  const form = new FormData();
  form.append("image", file);
  $("decision").textContent = "identifying…";
  $("decision").className = "decision";
  $("matches").replaceChildren();
  try {
    const body = await json("/identify?k=5", { method: "POST", body: form });
    const top = body.matches.find((m) => m.album_id === body.identified);
    if (top) {
      $("decision").textContent = `Identified: ${top.artist} — ${top.title} (${top.album_id}), ` +
        `confidence ${Number(body.confidence).toFixed(2)}`;
    } else {
      $("decision").textContent = "Not identified: no confident match (closest below)";
      $("decision").className = "decision no";
    }
    for (const m of body.matches) {
      $("matches").append(el("li", { "data-album": m.album_id }, thumb(m.album_id),
        el("span", {}, `${m.artist} — ${m.title} `, el("span", { class: "muted" },
          `${m.album_id} · score ${m.score.toFixed(3)}` + (m.inliers ? ` · ${m.inliers} inliers` : "")))));
    }
  } catch (err) {
    $("decision").textContent = err.message;
    $("decision").className = "decision no";
  }
}

$("identify-file").addEventListener("change", (ev) => ev.target.files[0] && identify(ev.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  $("identify-file").value = "";  // the chooser would otherwise name the previous file
  if (ev.dataTransfer.files[0]) identify(ev.dataTransfer.files[0]);
});

// ---- catalog ----
async function loadCatalog() {
  const q = $("catalog-search").value.trim();
  const body = await json(`/catalog?limit=50&q=${encodeURIComponent(q)}`);
  $("catalog-total").textContent = `(${body.total}${q ? " found" : ""})`;
  $("catalog-rows").replaceChildren(...body.albums.map((a) => el("tr", { "data-album": a.album_id },
    el("td", {}, thumb(a.album_id)), el("td", {}, a.album_id), el("td", {}, a.artist),
    el("td", {}, a.title),
    el("td", {}, el("button", { type: "button", onclick: () => removeAlbum(a) }, "Delete")))));
}

async function removeAlbum(album) {
  if (!confirm(`Delete ${album.artist} — ${album.title} (${album.album_id})?`)) return;
  const r = await api(`/catalog/${encodeURIComponent(album.album_id)}`, { method: "DELETE" });
  if (!r.ok) alert(`Delete failed: ${r.status}`);
  await loadCatalog();
}

let searchTimer = 0;
$("catalog-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(loadCatalog, 250);
});

$("add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  if (!form.get("album_id")) form.delete("album_id");
  $("add-result").textContent = "adding…";
  try {
    const body = await json("/catalog/add", { method: "POST", body: form });
    $("add-result").textContent = `added ${body.album_id}`;
    ev.target.reset();
    $("catalog-search").value = body.album_id;
    await loadCatalog();
  } catch (err) {
    $("add-result").textContent = err.message;
  }
});

// ---- analytics ----
function isoDay(date) {  // the local calendar day, YYYY-MM-DD
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function windowParams() {
  // Dates without an offset are read in the shop's time zone by the service.
  const until = new Date(`${$("until").value}T12:00:00`);
  until.setDate(until.getDate() + 1);
  return `since=${$("since").value}T00:00:00&until=${isoDay(until)}T00:00:00`;
}

function pct(conversion) { return conversion === null ? "—" : `${(conversion * 100).toFixed(0)} %`; }

async function loadAnalytics() {
  const params = windowParams();
  const [albums, unsold, hours] = await Promise.all([
    json(`/analytics/albums?${params}`), json(`/analytics/unsold?min_browses=3&${params}`),
    json(`/analytics/hours?${params}`)]);
  $("album-rows").replaceChildren(...albums.albums.map((a) => el("tr", { "data-album": a.album_id },
    el("td", {}, a.album_id), el("td", {}, a.artist ?? "?"), el("td", {}, a.title ?? "?"),
    el("td", { class: "num" }, a.browses), el("td", { class: "num" }, a.sales),
    el("td", { class: "num" }, pct(a.conversion)))));
  $("unsold").replaceChildren(...unsold.albums.map((a) => el("li", {},
    `${a.artist ?? a.album_id} — ${a.title ?? ""}: ${a.browses} browses, ${a.sales} sold`)));
  if (!unsold.albums.length) $("unsold").append(el("li", { class: "muted" }, "nothing yet"));
  $("tz").textContent = `(${hours.timezone})`;
  drawHours(hours.hours);
}

function drawHours(rows) {
  const svg = $("hours-chart");
  const ns = "http://www.w3.org/2000/svg";
  const max = Math.max(1, ...rows.map((r) => r.browses));
  const node = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  };
  svg.replaceChildren();
  for (const r of rows) {
    const h = Math.round((r.browses / max) * 120);
    const x = r.hour * 20 + 2;
    const bar = node("rect", { x, y: 135 - h, width: 16, height: h, "data-hour": r.hour });
    bar.append(node("title", {}, `${r.hour}:00 — ${r.browses} browses, ${r.sales} sold`));
    svg.append(bar);
    if (r.browses) svg.append(node("text", { x: x + 8, y: 131 - h, "text-anchor": "middle" }, r.browses));
    if (r.hour % 3 === 0) svg.append(node("text", { x: x + 8, y: 150, "text-anchor": "middle" }, r.hour));
  }
}

$("window-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadAnalytics().catch(showError); });

$("csv").addEventListener("click", async () => {
  const r = await api(`/analytics/albums?format=csv&${windowParams()}`);
  if (!r.ok) return alert(`Download failed: ${r.status}`);
  const url = URL.createObjectURL(await r.blob());
  el("a", { href: url, download: `cratewatch-albums-${$("since").value}-${$("until").value}.csv` }).click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
});

function showError(err) {
  $("album-rows").replaceChildren(el("tr", {}, el("td", { class: "error", colspan: 6 }, err.message)));
}

async function start() {
  if (sessionStorage.getItem(KEY_ITEM)) $("forget-key").hidden = false;
  const today = new Date();
  $("until").value = isoDay(today);
  $("since").value = isoDay(new Date(today.getTime() - 29 * 86400e3));
  while (!(await refreshStatus())) await new Promise((r) => setTimeout(r, 2000));
  await loadCatalog().catch((err) => { $("catalog-total").textContent = err.message; });
  await loadAnalytics().catch(showError);
  document.body.dataset.ready = "1";
}

start();
