// The live view of `sluice run --http`: draws the graph of /api/graph (the graph `sluice graph`
// prints) and updates each node from /api/events (server-sent events, one snapshot a second).
// Plain script, no build step: columns by longest path from the sources, in plan order.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const W = 210;
const H = 92;
const GAP_X = 90;
const GAP_Y = 26;
const PAD = 20;

const $ = (id) => document.getElementById(id);
let graph;
let latest;
let selected;
const boxes = new Map();

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

/** Column of each node: 0 for sources, else one more than its furthest input. */
function columns(g) {
  const inputs = new Map(g.nodes.map((n) => [n.name, []]));
  for (const e of g.edges) inputs.get(e.to)?.push(e.from);
  const col = new Map();
  const visit = (name, depth = 0) => {
    if (col.has(name)) return col.get(name);
    if (depth > g.nodes.length) return 0;
    const ins = inputs.get(name) ?? [];
    const c = ins.length === 0 ? 0 : 1 + Math.max(...ins.map((i) => visit(i, depth + 1)));
    col.set(name, c);
    return c;
  };
  for (const n of g.nodes) visit(n.name);
  return col;
}

function draw(g) {
  const svg = $('canvas');
  svg.replaceChildren();
  const col = columns(g);
  const rows = new Map();
  for (const n of g.nodes) {
    const c = col.get(n.name);
    const r = rows.get(c) ?? 0;
    rows.set(c, r + 1);
    boxes.set(n.name, { x: PAD + c * (W + GAP_X), y: PAD + r * (H + GAP_Y), node: n });
  }
  const width = PAD * 2 + (Math.max(...col.values()) + 1) * (W + GAP_X) - GAP_X;
  const height = PAD * 2 + Math.max(...rows.values()) * (H + GAP_Y) - GAP_Y;
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const edges = el('g', { class: 'edges' }, svg);
  // Several edges leaving or entering one node are spread over its side, so their port labels do not overlap.
  const spread = (key, other) => {
    const list = g.edges.filter((e) => e[key] === other);
    return (e) => (list.indexOf(e) + 1) / (list.length + 1);
  };
  const outSpread = new Map(g.nodes.map((n) => [n.name, spread('from', n.name)]));
  const inSpread = new Map(g.nodes.map((n) => [n.name, spread('to', n.name)]));
  for (const e of g.edges) {
    const a = boxes.get(e.from);
    const b = boxes.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + W;
    const y1 = a.y + H * outSpread.get(e.from)(e);
    const x2 = b.x;
    const y2 = b.y + H * inSpread.get(e.to)(e);
    const dx = Math.max(40, (x2 - x1) / 2);
    el('path', { class: `edge${e.port === 'out' ? '' : ' port'}`, d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`, 'data-from': e.from, 'data-to': e.to }, edges);
    if (e.port !== 'out') {
      const t = el('text', { class: 'edge-label', x: x1 + 6, y: y1 - 4 }, edges);
      t.textContent = e.port;
    }
  }
  for (const [name, b] of boxes) {
    const n = b.node;
    const gEl = el('g', { class: `node ${n.role}`, 'data-node': name, transform: `translate(${b.x},${b.y})`, tabindex: 0 }, svg);
    const title = el('title', {}, gEl);
    title.textContent = n.summary;
    el('rect', { width: W, height: H }, gEl);
    const line = (cls, y, text) => {
      const t = el('text', { class: cls, x: 10, y }, gEl);
      t.textContent = text;
      return t;
    };
    line('name', 18, name);
    line('kind', 34, n.role === 'source' ? `${n.role} · ${n.kind}, ${n.format}` : `${n.role} · ${n.kind}`);
    line('rates', 52, '');
    line('extra', 68, '');
    line('alert', 84, '');
    gEl.addEventListener('click', () => select(name));
    gEl.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') select(name);
    });
  }
}

const fmt = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : `${Math.round(n)}`);
const rate = (n) => (n >= 100 ? fmt(n) : n.toFixed(n >= 10 || n === 0 ? 0 : 1));
const secs = (s) => (s >= 3600 ? `${(s / 3600).toFixed(1)} h` : s >= 60 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`);
const bytes = (n) => (n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);

function extraText(n) {
  const parts = [];
  if (n.lag) parts.push(`lag ${n.lag.unit === 'bytes' ? bytes(n.lag.value) : fmt(n.lag.value)}`);
  if (n.watermark) parts.push(n.watermark === 'end' ? 'watermark end' : `watermark lag ${secs(n.watermarkLagSeconds ?? 0)}`);
  if (n.openWindows !== undefined) parts.push(`${fmt(n.openWindows)} open`);
  if (n.late > 0) parts.push(`late ${fmt(n.late)}`);
  if (n.queued) parts.push(`queued ${fmt(n.queued)}`);
  if (n.filtered > 0) parts.push(`filtered ${fmt(n.filtered)}`);
  return parts.join(' · ');
}

function update(s) {
  latest = s;
  $('pipeline').textContent = s.pipeline;
  $('profile').textContent = s.profile ? `(profile ${s.profile})` : '';
  document.title = `sluice · ${s.pipeline}`;
  const phase = $('phase');
  phase.textContent = s.phase;
  phase.className = `badge ${s.phase === 'running' ? 'good' : s.phase === 'restarting' || s.phase === 'failed' ? 'bad' : ''}`;
  const ready = $('ready');
  ready.textContent = s.ready.ready ? 'ready' : 'not ready';
  ready.className = `badge ${s.ready.ready ? 'good' : 'bad'}`;
  ready.title = s.ready.reasons.join('\n');
  const cp = s.checkpoint;
  $('checkpoint').textContent = cp ? `checkpoint #${cp.epoch}${cp.ageSeconds !== undefined ? `, state ${secs(cp.ageSeconds)} old` : ''}${cp.lastDurationMs !== undefined ? `, took ${cp.lastDurationMs} ms` : ''}, ${fmt(cp.entries)} panes, ${bytes(cp.bytes)}` : '';
  $('uptime').textContent = `up ${secs(s.uptimeSeconds)}${s.threads ? `, ${s.threads} threads` : ''}${s.restarts ? `, ${s.restarts} restarts` : ''}`;
  const failure = $('failure');
  const showFailure = s.lastFailure && (s.phase === 'restarting' || s.phase === 'failed');
  failure.classList.toggle('hidden', !showFailure);
  if (showFailure) failure.textContent = `${s.lastFailure.where ?? 'run'}: ${s.lastFailure.message}`;
  for (const n of s.nodes) {
    const g = document.querySelector(`g.node[data-node="${CSS.escape(n.name)}"]`);
    if (!g) continue;
    g.classList.toggle('failing', n.failing);
    g.dataset.in = String(n.in);
    g.dataset.out = String(n.out);
    g.dataset.failed = String(n.failed);
    g.querySelector('.rates').textContent = `in ${rate(n.inRate)}/s · out ${rate(n.outRate)}/s · ${fmt(n.role === 'sink' ? n.out : n.in)} total`;
    g.querySelector('.extra').textContent = extraText(n);
    const alert = n.connected === false ? `disconnected${n.connection ? `: ${n.connection}` : ''}` : n.failed > 0 ? `failed ${fmt(n.failed)}${n.failedRate > 0 ? ` (${rate(n.failedRate)}/s)` : ''}` : '';
    g.querySelector('.alert').textContent = alert.length > 36 ? `${alert.slice(0, 35)}…` : alert;
  }
  if (selected) showFigures(selected);
}

function showFigures(name) {
  const n = latest?.nodes.find((x) => x.name === name);
  const table = $('node-figures');
  table.replaceChildren();
  if (!n) return;
  const rows = [
    ['in', `${fmt(n.in)} (${rate(n.inRate)}/s)`],
    [n.role === 'sink' ? 'written' : 'out', `${fmt(n.out)} (${rate(n.outRate)}/s)`],
    ['failed', `${fmt(n.failed)}`],
  ];
  if (n.filtered) rows.push(['filtered', fmt(n.filtered)]);
  if (n.late) rows.push(['late', fmt(n.late)]);
  if (n.watermark) rows.push(['watermark', n.watermark]);
  if (n.openWindows !== undefined) rows.push(['open windows', fmt(n.openWindows)]);
  if (n.lag) rows.push(['lag', n.lag.unit === 'bytes' ? bytes(n.lag.value) : `${fmt(n.lag.value)} messages`]);
  if (n.connected !== undefined) rows.push(['connected', n.connected ? 'yes' : `no${n.connection ? `: ${n.connection}` : ''}`]);
  if (n.queued !== undefined) rows.push(['queued / writing', `${fmt(n.queued)} / ${fmt(n.writing ?? 0)}`]);
  for (const [k, v] of rows) {
    const tr = document.createElement('tr');
    const a = document.createElement('td');
    const b = document.createElement('td');
    a.textContent = k;
    b.textContent = v;
    tr.append(a, b);
    table.appendChild(tr);
  }
}

async function select(name) {
  selected = name;
  for (const g of document.querySelectorAll('g.node')) g.classList.toggle('selected', g.dataset.node === name);
  const node = graph.nodes.find((n) => n.name === name);
  $('details').classList.remove('hidden');
  $('node-name').textContent = name;
  $('node-kind').textContent = node.role === 'source' ? `${node.role} · ${node.kind}, format ${node.format}` : `${node.role} · ${node.kind}`;
  $('node-summary').textContent = node.summary;
  const config = node.role === 'source' ? { [node.kind]: node.config, format: { [node.format]: node.formatConfig } } : node.config;
  $('node-config').textContent = JSON.stringify(config, null, 2);
  showFigures(name);
  const list = $('node-errors');
  list.replaceChildren();
  const res = await fetch(`/api/nodes/${encodeURIComponent(name)}`);
  const detail = await res.json();
  if (detail.errors.length === 0) {
    const li = document.createElement('li');
    li.textContent = 'none';
    li.style.color = 'inherit';
    list.appendChild(li);
  }
  for (const e of detail.errors.slice().reverse()) {
    const li = document.createElement('li');
    const t = document.createElement('time');
    t.textContent = `${new Date(e.at).toISOString()}${e.partition ? ` · ${e.partition}${e.offset !== undefined ? ` @ ${e.offset}` : ''}` : ''}`;
    li.append(t, document.createTextNode(e.message));
    list.appendChild(li);
  }
}

async function start() {
  graph = await (await fetch('/api/graph')).json();
  draw(graph);
  $('close').addEventListener('click', () => {
    selected = undefined;
    $('details').classList.add('hidden');
    for (const g of document.querySelectorAll('g.node')) g.classList.remove('selected');
  });
  const events = new EventSource('/api/events');
  events.addEventListener('status', (ev) => {
    $('stream').classList.add('hidden');
    update(JSON.parse(ev.data));
  });
  events.addEventListener('error', () => $('stream').classList.remove('hidden'));
}

start().catch((err) => {
  $('phase').textContent = `cannot load: ${err.message}`;
});
