// The dashboard page: fills itself from /api/*, then keeps up through /api/events (server-sent events).
"use strict";

const state = { window: "rolling", ticker: null, posts: [] };
const $ = (id) => document.getElementById(id);

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function fmt(x, digits = 2) {
  return x === null || x === undefined ? "-" : Number(x).toFixed(digits);
}

function pct(x) {
  return x === null || x === undefined ? "-" : Math.round(100 * x) + "%";
}

async function getJSON(path) {
  const response = await fetch(path);
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}

async function refreshLeaderboard() {
  const rows = await getJSON("/api/tickers?window=" + encodeURIComponent(state.window));
  const body = $("leaderboard").tBodies[0];
  body.replaceChildren(...rows.map((r) => {
    const tr = document.createElement("tr");
    tr.className = "pick";
    tr.dataset.ticker = r.ticker;
    const mood = r.weighted_score > 0.1 ? "bullish" : r.weighted_score < -0.1 ? "bearish" : "neutral";
    tr.append(cell(r.ticker), cell(r.posts), cell(fmt(r.weighted_score), mood), cell(pct(r.shares.bullish)),
      cell(pct(r.shares.bearish)), cell(pct(r.mean_sarcasm)), cell(r.spike ? "volume spike" : "", r.spike ? "spike" : ""));
    tr.addEventListener("click", () => showTicker(r.ticker));
    return tr;
  }));
  if (!state.ticker && rows.length) showTicker(rows[0].ticker);
}

async function showTicker(ticker) {
  state.ticker = ticker;
  const data = await getJSON("/api/tickers/" + encodeURIComponent(ticker));
  $("chart-title").textContent = ticker + ": sentiment and volume by minute";
  // Minutes without posts break the line: a straight line across them would draw a sentiment nobody posted.
  const minutes = [];
  data.history.forEach((h, i) => {
    if (i && h.start - data.history[i - 1].start > 60) minutes.push({ start: h.start - 30, posts: null, mean_score: null });
    minutes.push(h);
  });
  const x = minutes.map((h) => new Date(h.start * 1000));
  const most = Math.max(1, ...data.history.map((h) => h.posts)); // post counts get whole-number ticks, not 0.263
  Plotly.react("chart", [
    { x, y: minutes.map((h) => h.posts), type: "bar", width: 48000, name: "posts", yaxis: "y2", marker: { color: "#3a4a5e" } },
    { x, y: minutes.map((h) => h.mean_score), type: "scatter", mode: "lines+markers", name: "mean score", line: { color: "#4cd07d" } },
  ], {
    margin: { t: 30, r: 50, b: 50, l: 50 }, paper_bgcolor: "#181c22", plot_bgcolor: "#181c22", font: { color: "#e6e6e6" },
    yaxis: { title: { text: "mean score" }, range: [-1, 1] },
    yaxis2: { title: { text: "posts" }, overlaying: "y", side: "right", range: [0, most * 1.05], dtick: Math.ceil(most / 5) },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" }, // above the plot: below, it hid the dates
  }, { displayModeBar: false, responsive: true });
}

function postRow(p) {
  const tr = document.createElement("tr");
  tr.dataset.post = p.post_id;
  tr.append(cell(p.post_id), cell(p.text, "text"), cell((p.tickers || []).join(" ")), cell(p.label, p.label),
    cell(fmt(p.score)), cell(pct(p.confidence)), cell(p.sarcasm === null || p.sarcasm === undefined ? "" : pct(p.sarcasm)));
  return tr;
}

function addPost(p) {
  const body = $("posts").tBodies[0];
  body.prepend(postRow(p));
  while (body.rows.length > 100) body.deleteRow(body.rows.length - 1);
}

function listItem(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

function driftText(d) {
  return `${d.analyzer} ${d.model_version}: error ${fmt(d.error_before)} → ${fmt(d.error_after)}`;
}

function modelText(m) {
  return `${m.analyzer} ${m.version}: ${m.promoted ? "promoted" : "not promoted"} — ${m.why}` +
    (m.metrics && m.metrics.accuracy !== undefined ? ` (accuracy ${fmt(m.metrics.accuracy, 3)})` : "");
}

function prepend(listId, text) {
  const list = $(listId);
  if (list.firstElementChild && list.firstElementChild.classList.contains("dim")) list.replaceChildren();
  list.prepend(listItem(text));
  while (list.children.length > 30) list.lastElementChild.remove();
}

function showStats(s) {
  $("stats").textContent = `${fmt(s.scores_per_s, 1)} scores/s · workers ${s.worker_lag} posts behind · ${s.tickers} tickers`;
  const serving = Object.entries(s.serving || {});
  if (serving.length) $("serving").textContent = "serving: " + serving.map(([name, version]) => `${name} ${version}`).join(" · ");
}

let leaderboardDue = null;
function leaderboardSoon() {
  if (leaderboardDue) return;
  leaderboardDue = setTimeout(() => { leaderboardDue = null; refreshLeaderboard(); if (state.ticker) showTicker(state.ticker); }, 1000);
}

async function start() {
  $("window").addEventListener("change", (e) => { state.window = e.target.value; refreshLeaderboard(); });
  const [posts, drift, models, stats] = await Promise.all(["/api/posts", "/api/drift", "/api/models", "/api/stats"].map(getJSON));
  posts.slice(0, 100).reverse().forEach(addPost);
  drift.slice().reverse().forEach((d) => prepend("drift", driftText(d)));
  models.slice().reverse().forEach((m) => prepend("models", modelText(m)));
  showStats(stats);
  await refreshLeaderboard();
  const events = new EventSource("/api/events");
  events.addEventListener("post", (e) => addPost(JSON.parse(e.data)));
  events.addEventListener("ticker", () => leaderboardSoon());
  events.addEventListener("drift", (e) => prepend("drift", driftText(JSON.parse(e.data))));
  events.addEventListener("model", (e) => prepend("models", modelText(JSON.parse(e.data))));
  events.addEventListener("stats", (e) => showStats(JSON.parse(e.data)));
}

start();
