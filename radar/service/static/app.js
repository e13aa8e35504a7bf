// radar dashboard: plain JS, charts drawn as inline SVG, fed by the service's JSON endpoints.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#0969da", "#1a7f37", "#bf3989", "#9a6700", "#8250df", "#cf222e", "#57606a"];
const state = { key: "", pending: 0, failures: [] };

function readKey() {
  const m = /(?:^|[#&])key=([^&]+)/.exec(location.hash);
  if (m) {
    const key = decodeURIComponent(m[1]);
    try { localStorage.setItem("radar.key", key); } catch (e) { /* storage may be off */ }
    return key;
  }
  try { return localStorage.getItem("radar.key") || ""; } catch (e) { return ""; }
}

function setStatus(text, error) {
  const el = document.getElementById("status");
  el.textContent = text;
  el.className = error ? "status error" : "status";
}

async function api(path) {
  const response = await fetch(path, { headers: { "X-API-Key": state.key } });
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    const err = new Error(body.detail || response.statusText);
    err.denied = true;
    throw err;
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(path + ": " + response.status + " " + (body.detail || ""));
  }
  return response.json();
}

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return v.toLocaleString("en");
    return Math.abs(v) >= 100 ? v.toLocaleString("en", { maximumFractionDigits: 0 }) : v.toPrecision(3);
  }
  return String(v);
}

function done(box, note) {
  if (note) box.appendChild(el("p", { class: "note" }, note));
  box.dataset.drawn = "1";
}

function svgFrame(width, height) {
  return el("svg:svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", style: `max-width:${width}px`, role: "img" });
}

function table(columns, rows) {
  const t = el("table");
  const head = el("tr");
  columns.forEach(c => head.appendChild(el("th", {}, c[1])));
  t.appendChild(head);
  rows.forEach(r => {
    const tr = el("tr");
    columns.forEach(c => tr.appendChild(el("td", {}, fmt(r[c[0]]))));
    t.appendChild(tr);
  });
  return t;
}

// -- charts -----------------------------------------------------------------------------------

function lineChart(box, labels, series, opts) {
  const W = 640, H = 240, L = 56, R = 56, T = 14, B = 28;
  const svg = svgFrame(W, H);
  const n = labels.length;
  const x = i => L + (n <= 1 ? 0 : (i * (W - L - R)) / (n - 1));
  svg.appendChild(el("svg:line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#8c959f" }));
  series.forEach((s, k) => {
    const max = Math.max(1e-9, ...s.values.map(v => v || 0));
    const y = v => H - B - ((v || 0) / max) * (H - T - B);
    const points = s.values.map((v, i) => `${x(i)},${y(v)}`).join(" ");
    svg.appendChild(el("svg:polyline", { points, fill: "none", stroke: COLORS[k], "stroke-width": 2, class: "series" }));
    const side = k === 0 ? L - 4 : W - R + 4;
    svg.appendChild(el("svg:text", { x: side, y: T + 4, "text-anchor": k === 0 ? "end" : "start", fill: COLORS[k] }, fmt(max)));
  });
  const step = Math.max(1, Math.ceil(n / 8));
  labels.forEach((label, i) => {
    if (i % step === 0) svg.appendChild(el("svg:text", { x: x(i), y: H - 8, "text-anchor": "middle" }, label));
  });
  box.appendChild(svg);
  const legend = el("div", { class: "legend" });
  series.forEach((s, k) => {
    const item = el("span");
    item.appendChild(el("i", { style: `background:${COLORS[k]}` }));
    item.appendChild(document.createTextNode(s.name + (opts && opts.scale ? " (own scale)" : "")));
    legend.appendChild(item);
  });
  box.appendChild(legend);
}

function barChart(box, items) {
  const W = 640, rowH = 22, L = 150, H = Math.max(1, items.length) * rowH + 10;
  const svg = svgFrame(W, H);
  const max = Math.max(1, ...items.map(i => i.value));
  items.forEach((item, i) => {
    const y = 5 + i * rowH;
    const w = ((W - L - 60) * item.value) / max;
    svg.appendChild(el("svg:text", { x: L - 6, y: y + 14, "text-anchor": "end" }, item.label));
    svg.appendChild(el("svg:rect", { x: L, y: y + 3, width: Math.max(1, w), height: rowH - 6, fill: COLORS[i % COLORS.length], class: "bar" }));
    svg.appendChild(el("svg:text", { x: L + w + 4, y: y + 14 }, fmt(item.value)));
  });
  box.appendChild(svg);
}

function survivalChart(box, groups) {
  const W = 640, H = 240, L = 40, R = 10, T = 10, B = 28;
  const svg = svgFrame(W, H);
  const maxDay = Math.max(1, ...groups.flatMap(g => g.days));
  const x = d => L + (d / maxDay) * (W - L - R);
  const y = s => T + (1 - s) * (H - T - B);
  svg.appendChild(el("svg:line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#8c959f" }));
  svg.appendChild(el("svg:line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#8c959f" }));
  [0, 0.5, 1].forEach(s => svg.appendChild(el("svg:text", { x: L - 4, y: y(s) + 4, "text-anchor": "end" }, s.toFixed(1))));
  svg.appendChild(el("svg:text", { x: W - R, y: H - 8, "text-anchor": "end" }, fmt(Math.round(maxDay)) + " days"));
  groups.forEach((g, k) => {
    let d = `M ${x(0)} ${y(1)}`;
    g.days.forEach((day, i) => {
      const prev = i === 0 ? 1 : g.survival[i - 1];
      d += ` L ${x(day)} ${y(prev)} L ${x(day)} ${y(g.survival[i])}`;
    });
    d += ` L ${x(maxDay)} ${y(g.survival[g.survival.length - 1])}`;
    svg.appendChild(el("svg:path", { d, fill: "none", stroke: COLORS[k % COLORS.length], "stroke-width": 2, class: "series" }));
  });
  box.appendChild(svg);
  const legend = el("div", { class: "legend" });
  groups.forEach((g, k) => {
    const item = el("span");
    item.appendChild(el("i", { style: `background:${COLORS[k % COLORS.length]}` }));
    item.appendChild(document.createTextNode(`${g.name} (${g.customers} customers, ${g.events} cancelled)`));
    legend.appendChild(item);
  });
  box.appendChild(legend);
}

function heatmap(box, stages, counts) {
  const cell = 44, L = 110, T = 90;
  const W = L + stages.length * cell + 10, H = T + stages.length * cell + 10;
  const svg = svgFrame(W, H);
  svg.setAttribute("width", Math.min(W, 640));
  const max = Math.max(1, ...counts.flat());
  stages.forEach((s, i) => {
    svg.appendChild(el("svg:text", { x: L - 6, y: T + i * cell + cell / 2 + 4, "text-anchor": "end" }, s));
    const label = el("svg:text", { x: L + i * cell + cell / 2, y: T - 6, transform: `rotate(-45 ${L + i * cell + cell / 2} ${T - 6})` }, s);
    svg.appendChild(label);
  });
  counts.forEach((row, i) => row.forEach((n, j) => {
    const a = n / max;
    svg.appendChild(el("svg:rect", { x: L + j * cell, y: T + i * cell, width: cell - 2, height: cell - 2, fill: `rgba(9,105,218,${0.08 + 0.92 * a})`, class: "cell" }));
    svg.appendChild(el("svg:text", { x: L + j * cell + cell / 2, y: T + i * cell + cell / 2 + 4, "text-anchor": "middle", fill: a > 0.5 ? "#fff" : "#1d2733" }, fmt(n)));
  }));
  box.appendChild(svg);
  box.appendChild(el("p", { class: "note" }, "rows: from stage, columns: to stage"));
}

function liftChart(box, rows) {
  const W = 640, rowH = 22, L = 200, H = rows.length * rowH + 30;
  const svg = svgFrame(W, H);
  const values = rows.flatMap(r => [r.lift_low, r.lift_high, r.lift]).filter(v => v !== null && v !== undefined);
  const span = Math.max(0.01, ...values.map(Math.abs));
  const x = v => L + ((v + span) / (2 * span)) * (W - L - 20);
  svg.appendChild(el("svg:line", { x1: x(0), y1: 0, x2: x(0), y2: H - 20, stroke: "#8c959f", "stroke-dasharray": "3 3" }));
  rows.forEach((r, i) => {
    const y = 10 + i * rowH;
    svg.appendChild(el("svg:text", { x: L - 6, y: y + 4, "text-anchor": "end" }, `${r.rule_id} ${r.rule_version || ""}`));
    if (r.lift_low !== null && r.lift_high !== null && r.lift_low !== undefined) {
      svg.appendChild(el("svg:line", { x1: x(r.lift_low), y1: y, x2: x(r.lift_high), y2: y, stroke: COLORS[0], "stroke-width": 2 }));
    }
    if (r.lift !== null && r.lift !== undefined) {
      svg.appendChild(el("svg:circle", { cx: x(r.lift), cy: y, r: 4, fill: r.significant ? COLORS[1] : COLORS[6], class: "point" }));
    }
  });
  svg.appendChild(el("svg:text", { x: x(0), y: H - 6, "text-anchor": "middle" }, "lift 0"));
  box.appendChild(svg);
}

// -- sections ---------------------------------------------------------------------------------

const SECTIONS = {
  async phases(box) {
    const p = await api("/phases");
    const cards = [
      ["1 · Operational CRM", p.operational.events, `${fmt(p.operational.inbound)} inbound · ${fmt(p.operational.outbound)} outbound`],
      ["2 · Stored data", p.stored.customers, `customers · view at ${fmt(p.stored.view_position)} · lag ${fmt(p.stored.lag)}`],
      ["3 · Analytical CRM", p.analytical.results, `results of ${fmt(p.analytical.analyses)} analysis runs`],
      ["4 · Business rules", p.rules.planned, `planned · ${fmt(p.rules.held_out)} held out · ${fmt(p.rules.outcomes)} outcomes · ${fmt(p.stored.actions.open)} open`],
    ];
    cards.forEach(([title, n, label]) => {
      const card = el("div", { class: "phase" });
      card.appendChild(el("h3", {}, title));
      card.appendChild(el("div", { class: "n" }, fmt(n)));
      card.appendChild(el("div", { class: "l" }, label));
      box.appendChild(card);
    });
    done(box);
  },
  async kpis(box) {
    const h = await api("/kpis/history?months=36");
    if (!h.months.length) return done(box, "no events yet");
    lineChart(box, h.months.map(m => m.month), [
      { name: "revenue", values: h.months.map(m => m.revenue) },
      { name: "active customers", values: h.months.map(m => m.active_customers) },
    ], { scale: true });
    done(box);
  },
  async segments(box) {
    const s = await api("/segments");
    const items = s.segments.map(g => ({ label: g.name, value: g.customers }));
    if (!items.length) return done(box, "no customers yet");
    barChart(box, items);
    done(box);
  },
  async profiles(box) {
    const s = await api("/segments");
    const cols = [["name", "segment"], ["customers", "customers"], ["avg_revenue", "revenue"], ["avg_purchases", "purchases"],
      ["avg_order_value", "order value"], ["avg_complaints", "complaints"], ["avg_churn_risk", "churn risk"], ["avg_clv", "CLV"],
      ["cancelled_share", "cancelled"]];
    box.appendChild(table(cols, s.segments));
    if (s.rfm_groups.length > 1) { box.appendChild(el("h3", {}, "RFM groups")); box.appendChild(table(cols, s.rfm_groups)); }
    done(box);
  },
  async survival(box) {
    const s = await api("/survival");
    if (!s.groups.length) return done(box, "no contractual customers yet");
    survivalChart(box, s.groups);
    done(box);
  },
  async lifecycle(box) {
    const t = await api("/lifecycle/transitions");
    if (!t.stages.length) return done(box, "no lifecycle stages recorded yet (run the analyses)");
    heatmap(box, t.stages, t.counts);
    done(box);
  },
  async effect(box) {
    const e = await api("/rules/effect");
    if (!e.rules.length) return done(box, e.valid === false ? "rule files have errors" : "no rule decisions yet");
    liftChart(box, e.rules);
    box.appendChild(table([["rule_id", "rule"], ["rule_version", "version"], ["treated", "treated"], ["treated_rate", "treated rate"],
      ["holdout", "hold-out"], ["holdout_rate", "hold-out rate"], ["lift", "lift"], ["lift_low", "low"], ["lift_high", "high"],
      ["significant", "significant"]], e.rules));
    done(box);
  },
};

async function run(name, box) {
  box.replaceChildren();
  delete box.dataset.drawn;
  state.pending += 1;
  try {
    await SECTIONS[name](box);
  } catch (err) {
    box.replaceChildren();
    if (err.denied) {
      done(box, "not available for this key: " + err.message);
    } else {
      state.failures.push(name + ": " + err.message);
      box.appendChild(el("p", { class: "note" }, "could not load: " + err.message));
      box.dataset.failed = "1";
    }
  } finally {
    state.pending -= 1;
    if (state.pending === 0) finished();
  }
}

function finished() {
  if (state.failures.length) setStatus("some parts failed: " + state.failures.join("; "), true);
  else setStatus("updated " + new Date().toLocaleTimeString("en"));
  document.body.dataset.ready = "1";
}

// -- the customer page: timeline and the as-of slider ----------------------------------------

async function showCustomer(id) {
  const box = document.getElementById("customerpage");
  box.replaceChildren();
  delete box.dataset.drawn;
  try {
    const t = await api("/customers/" + encodeURIComponent(id) + "/timeline?limit=200");
    const start = Date.parse(t.first_occurred), end = Math.max(Date.parse(t.last_occurred), start + 1);
    const slider = el("div", { class: "slider" });
    const input = el("input", { type: "range", min: "0", max: "1000", value: "1000", id: "asof" });
    const label = el("span", { id: "asoflabel" });
    slider.appendChild(el("span", {}, "as of"));
    slider.appendChild(input);
    slider.appendChild(label);
    box.appendChild(slider);
    const view = el("div", { id: "asofview" });
    box.appendChild(view);
    const strip = el("div", {});
    box.appendChild(strip);
    drawStrip(strip, t.timeline, start, end);
    const list = el("div", { class: "timeline" });
    list.appendChild(table([["occurred_at", "occurred"], ["type", "type"], ["channel", "channel"], ["direction", "direction"], ["source", "source"], ["position", "position"]], t.timeline));
    box.appendChild(list);
    const update = async () => {
      const moment = new Date(start + ((end - start) * Number(input.value)) / 1000).toISOString();
      label.textContent = moment.slice(0, 10);
      try {
        const v = await api(`/customers/${encodeURIComponent(id)}/view?as_of=${encodeURIComponent(moment)}`);
        const row = v.row || {};
        view.replaceChildren(table([["k", "as of " + moment.slice(0, 10)], ["v", "value"]],
          ["purchases", "revenue", "inbound_contacts", "outbound_contacts", "complaints", "segment", "lifecycle_stage", "churn_risk"]
            .map(k => ({ k, v: row[k] }))));
      } catch (err) {
        view.replaceChildren(el("p", { class: "note" }, err.message));
      }
    };
    input.addEventListener("change", update);
    await update();
    done(box);
  } catch (err) {
    box.replaceChildren(el("p", { class: "note" }, err.message));
    done(box);
  }
}

function drawStrip(box, events, start, end) {
  const W = 640, H = 40;
  const svg = svgFrame(W, H);
  const types = [...new Set(events.map(e => e.type))];
  svg.appendChild(el("svg:line", { x1: 10, y1: H / 2, x2: W - 10, y2: H / 2, stroke: "#8c959f" }));
  events.forEach(e => {
    const x = 10 + ((Date.parse(e.occurred_at) - start) / (end - start)) * (W - 20);
    svg.appendChild(el("svg:circle", { cx: x, cy: H / 2, r: 4, fill: COLORS[types.indexOf(e.type) % COLORS.length], class: "point" }));
  });
  box.appendChild(svg);
}

function refresh() {
  setStatus("loading…");
  delete document.body.dataset.ready;
  state.failures = [];
  document.querySelectorAll("[data-chart]").forEach(box => {
    const name = box.dataset.chart;
    if (SECTIONS[name]) run(name, box);
  });
}

window.addEventListener("error", ev => { state.failures.push(String(ev.message)); });

document.addEventListener("DOMContentLoaded", () => {
  state.key = readKey();
  document.getElementById("key").value = state.key;
  document.getElementById("keyform").addEventListener("submit", ev => {
    ev.preventDefault();
    state.key = document.getElementById("key").value.trim();
    try { localStorage.setItem("radar.key", state.key); } catch (e) { /* ignore */ }
    refresh();
  });
  document.getElementById("customerform").addEventListener("submit", ev => {
    ev.preventDefault();
    const id = document.getElementById("customer").value.trim();
    if (id) showCustomer(id);
  });
  const m = /(?:^|[#&])customer=([^&]+)/.exec(location.hash);
  if (m) {
    document.getElementById("customer").value = decodeURIComponent(m[1]);
    showCustomer(decodeURIComponent(m[1]));
  } else {
    done(document.getElementById("customerpage"), "enter a customer id (needs an auditor key)");
  }
  if (!state.key) { setStatus("enter an API key (marketer, auditor or admin)", true); document.body.dataset.ready = "1"; return; }
  refresh();
  setInterval(() => { if (state.pending === 0) refresh(); }, 15000);
});
