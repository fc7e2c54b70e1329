/**
 * The dashboard page: one HTML document with its styles and script inline
 * (built into the package's JavaScript as a string), so it works offline and
 * loads nothing from elsewhere. It holds no data: it reads the JSON routes
 * under `./dashboard/api/` and their live stream. Charts are inline SVG.
 *
 * Credentials: the page's requests carry the browser's cookies; a bearer
 * token can be given once in the address's fragment (`#token=...`, never sent
 * to the server in the URL) and is kept in the tab's session storage.
 */

const STYLE = String.raw`
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --muted:#6b7280; --line:#e5e7eb; --ok:#15803d; --bad:#b91c1c;
  --warn:#b45309; --pub:#2563eb; --done:#16a34a; --fail:#dc2626; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font-size: 14px; }
header { display: flex; align-items: center; gap: 12px; padding: 12px 20px; background: #111827; color: #fff; }
header h1 { font-size: 16px; margin: 0; font-weight: 600; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; background: #374151; color: #fff; }
.badge.ok { background: var(--ok); } .badge.bad { background: var(--bad); } .badge.warn { background: var(--warn); }
.spacer { flex: 1; }
#live::before { content: "●"; margin-right: 4px; color: #9ca3af; } #live.on::before { color: #22c55e; }
main { padding: 16px 20px; display: grid; gap: 16px; grid-template-columns: repeat(12, 1fr); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; min-width: 0; }
section h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 10px; }
.w12 { grid-column: span 12; } .w8 { grid-column: span 8; } .w6 { grid-column: span 6; } .w4 { grid-column: span 4; }
@media (max-width: 900px) { .w8, .w6, .w4 { grid-column: span 12; } }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(130px, 1fr)); gap: 10px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .v { font-size: 22px; font-weight: 650; } .card .k { color: var(--muted); font-size: 12px; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.click { cursor: pointer; } tr.click:hover td { background: #f3f4f6; }
.muted { color: var(--muted); } .err { color: var(--bad); } .mono { font-family: ui-monospace, Menlo, monospace; font-size: 12px; }
button { font: inherit; border: 1px solid #d1d5db; background: #fff; border-radius: 6px; padding: 4px 10px; cursor: pointer; }
button.primary { background: var(--pub); border-color: var(--pub); color: #fff; } button.danger { color: var(--bad); }
button:disabled { opacity: .5; cursor: default; }
input, select { font: inherit; padding: 4px 6px; border: 1px solid #d1d5db; border-radius: 6px; }
.filters { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 10px; align-items: center; }
.warning { border-left: 4px solid var(--warn); background: #fffbeb; padding: 8px 10px; margin-bottom: 8px; border-radius: 4px; }
.warning code { font-weight: 700; }
.legend { display: flex; gap: 12px; font-size: 12px; color: var(--muted); margin-bottom: 4px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
pre { background: #f3f4f6; padding: 10px; border-radius: 6px; overflow: auto; max-height: 320px; margin: 0; }
#modal { position: fixed; inset: 0; background: rgba(17,24,39,.45); display: none; align-items: center; justify-content: center; }
#modal.open { display: flex; }
#modal .box { background: #fff; border-radius: 8px; padding: 18px 20px; width: 360px; box-shadow: 0 10px 30px rgba(0,0,0,.25); }
#modal .actions { display: flex; justify-content: flex-end; gap: 8px; margin-top: 16px; }
#toast { position: fixed; bottom: 16px; right: 16px; background: #111827; color: #fff; padding: 8px 12px; border-radius: 6px; display: none; }
`;

const SCRIPT = String.raw`
(function () {
  'use strict';
  var base = location.pathname.replace(/\/+$/, '') + '/api/';
  var hash = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (hash) { sessionStorage.setItem('eventBusDashboardToken', decodeURIComponent(hash[1])); history.replaceState(null, '', location.pathname + location.search); }
  var token = sessionStorage.getItem('eventBusDashboardToken');
  var state = { overview: null, deadLetters: [], timeline: [], cursor: null, selected: null, readOnly: true };

  function headers(json) {
    var h = {};
    if (token) h.authorization = 'Bearer ' + token;
    if (json) h['content-type'] = 'application/json';
    return h;
  }
  function api(path, body) {
    var init = body === undefined ? { headers: headers(false) } : { method: 'POST', headers: headers(true), body: JSON.stringify(body) };
    init.credentials = 'same-origin';
    return fetch(base + path, init).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) { var e = new Error((data.error && data.error.message) || ('HTTP ' + res.status)); e.status = res.status; throw e; }
        return data;
      });
    });
  }
  function $(id) { return document.getElementById(id); }
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === 'text') el.textContent = attrs[k];
      else if (k === 'onclick') el.addEventListener('click', attrs[k]);
      else if (attrs[k] !== undefined && attrs[k] !== null && attrs[k] !== false) el.setAttribute(k, attrs[k]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return el;
  }
  function svg(tag, attrs) {
    var el = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (var k in attrs) el.setAttribute(k, attrs[k]);
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  function age(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 10) return (Math.round(ms * 10) / 10) + ' ms';
    if (ms < 1000) return Math.round(ms) + ' ms';
    if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 3600000) return Math.round(ms / 60000) + ' min';
    return (ms / 3600000).toFixed(1) + ' h';
  }
  function time(iso) { var d = new Date(iso); return isNaN(d) ? '' : d.toLocaleString(); }
  function toast(message) {
    var t = $('toast'); t.textContent = message; t.style.display = 'block';
    clearTimeout(toast.timer); toast.timer = setTimeout(function () { t.style.display = 'none'; }, 3000);
  }
  function ask(message, confirmLabel) {
    return new Promise(function (resolve) {
      $('modal-text').textContent = message;
      $('modal-ok').textContent = confirmLabel;
      $('modal').className = 'open';
      function done(answer) { $('modal').className = ''; $('modal-ok').onclick = null; $('modal-cancel').onclick = null; resolve(answer); }
      $('modal-ok').onclick = function () { done(true); };
      $('modal-cancel').onclick = function () { done(false); };
    });
  }
  function showError(err) {
    if (err && err.status === 401) { $('status').textContent = 'sign in required'; $('status').className = 'badge bad'; }
    toast(err && err.message ? err.message : String(err));
  }

  function card(label, value, cls) { return h('div', { class: 'card' }, h('div', { class: 'v ' + (cls || '') }, value), h('div', { class: 'k' }, label)); }

  function renderOverview(o) {
    state.readOnly = o.readOnly;
    $('readonly').style.display = o.readOnly ? '' : 'none';
    $('redrive-all').style.display = o.readOnly ? 'none' : '';
    var hl = o.health;
    $('status').textContent = hl.status; $('status').className = 'badge ' + (hl.healthy ? 'ok' : 'bad');
    $('storage').textContent = 'storage: ' + o.storage;
    var s = o.stats;
    clear($('cards')).append(
      card('published', s.published), card('processed', s.processed), card('failed (dead-lettered)', s.failed, s.failed ? 'err' : ''),
      card('retried', s.retried), card('in flight', s.inFlight), card('avg processing', age(s.processingTimeMs.average)),
      card('unprocessed', hl.unprocessed), card('dead letters', hl.deadLetters, hl.deadLetters ? 'err' : ''),
      card('oldest pending', age(hl.oldestPendingAgeMs)));
    $('counting').textContent = 'counted in this process since ' + time(o.countingSince);
    var w = clear($('warnings'));
    if (hl.warnings.length === 0) w.append(h('div', { class: 'muted' }, 'No warnings.'));
    hl.warnings.forEach(function (x) { w.append(h('div', { class: 'warning', 'data-code': x.code }, h('code', null, x.code), ' ', x.message)); });
    renderSeries(o.minutes);
    renderTypes(o.eventTypes);
    var body = clear($('subscribers'));
    if (o.subscribers.length === 0) body.append(h('tr', null, h('td', { colspan: 8, class: 'muted' }, 'No subscribers registered.')));
    o.subscribers.forEach(function (b) {
      var pending = b.due + b.leased + b.retrying + b.scheduled;
      body.append(h('tr', { 'data-subscriber': b.subscriber }, h('td', { class: 'mono' }, b.subscriber), h('td', { class: 'num' }, pending),
        h('td', { class: 'num' }, b.due), h('td', { class: 'num' }, b.leased), h('td', { class: 'num' }, b.retrying),
        h('td', { class: 'num' }, b.scheduled), h('td', { class: 'num' }, age(b.oldestPendingAgeMs)), h('td', { class: 'muted' }, time(b.lastSeenAt))));
    });
    var select = $('f-type');
    if (select.options.length <= 1) (o.catalogTypes || []).forEach(function (t) { select.append(h('option', { value: t }, t)); });
  }

  function renderSeries(minutes) {
    var el = clear($('chart')), W = 600, H = 160, pad = 24, n = minutes.length;
    var max = 1;
    minutes.forEach(function (m) { max = Math.max(max, m.published, m.succeeded, m.failed); });
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', height: H, role: 'img', 'aria-label': 'throughput and failures per minute' });
    var bw = (W - pad) / n;
    for (var g = 0; g <= 2; g++) {
      var y = H - pad - (H - pad - 8) * g / 2;
      root.append(svg('line', { x1: pad, x2: W, y1: y, y2: y, stroke: '#e5e7eb' }));
      var label = svg('text', { x: 2, y: y + 4, 'font-size': 10, fill: '#6b7280' }); label.textContent = String(Math.round(max * g / 2)); root.append(label);
    }
    minutes.forEach(function (m, i) {
      var x = pad + i * bw, scale = (H - pad - 8) / max;
      [['published', '#2563eb', 0], ['succeeded', '#16a34a', 1], ['failed', '#dc2626', 2]].forEach(function (k) {
        var v = m[k[0]]; if (!v) return;
        var r = svg('rect', { x: x + 1 + k[2] * (bw - 2) / 3, y: H - pad - v * scale, width: Math.max(1, (bw - 2) / 3), height: v * scale, fill: k[1] });
        var tip = svg('title', {}); tip.textContent = new Date(m.at).toLocaleTimeString() + ' ' + k[0] + ': ' + v; r.append(tip); root.append(r);
      });
    });
    [0, Math.floor(n / 2), n - 1].forEach(function (i) {
      var t = svg('text', { x: pad + i * bw, y: H - 6, 'font-size': 10, fill: '#6b7280' });
      t.textContent = new Date(minutes[i].at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }); root.append(t);
    });
    el.append(root);
  }

  function renderTypes(types) {
    var el = clear($('types'));
    if (types.length === 0) { el.append(h('div', { class: 'muted' }, 'Nothing published yet.')); return; }
    var top = types.slice(0, 12), max = top[0].count, W = 400, row = 22;
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + (top.length * row), width: '100%', height: top.length * row, role: 'img', 'aria-label': 'event type distribution' });
    top.forEach(function (t, i) {
      var w = Math.max(2, (W - 190) * t.count / max);
      root.append(svg('rect', { x: 150, y: i * row + 4, width: w, height: row - 8, fill: '#6366f1', rx: 2 }));
      var name = svg('text', { x: 0, y: i * row + 15, 'font-size': 11, fill: '#1d2330' }); name.textContent = t.eventType.length > 24 ? t.eventType.slice(0, 23) + '…' : t.eventType; root.append(name);
      var c = svg('text', { x: 156 + w, y: i * row + 15, 'font-size': 11, fill: '#6b7280' }); c.textContent = String(t.count); root.append(c);
    });
    el.append(root);
  }

  function renderDeadLetters() {
    var body = clear($('dead-letters'));
    $('dl-count').textContent = String(state.deadLetters.length);
    if (state.deadLetters.length === 0) body.append(h('tr', null, h('td', { colspan: 6, class: 'muted' }, 'No dead letters.')));
    state.deadLetters.forEach(function (d) {
      var actions = state.readOnly ? h('td') : h('td', null,
        h('button', { class: 'primary', 'data-action': 'redrive', onclick: function (e) { e.stopPropagation(); redrive({ eventId: d.eventId, subscriber: d.subscriber }); } }, 'Redrive'), ' ',
        h('button', { class: 'danger', 'data-action': 'discard', onclick: function (e) { e.stopPropagation(); discard(d); } }, 'Discard'));
      body.append(h('tr', { class: 'click', 'data-dead-letter': d.id, onclick: function () { select(d.event); } },
        h('td', { class: 'mono' }, d.eventType), h('td', { class: 'mono' }, d.subscriber), h('td', { class: 'num' }, d.attempts),
        h('td', { class: 'err' }, d.error.name + ': ' + d.error.message), h('td', { class: 'muted' }, time(d.failedAt)), actions));
    });
  }

  function renderTimeline() {
    var body = clear($('timeline'));
    if (state.timeline.length === 0) body.append(h('tr', null, h('td', { colspan: 5, class: 'muted' }, 'No events match.')));
    state.timeline.forEach(function (e) {
      body.append(h('tr', { class: 'click', 'data-event': e.eventId, onclick: function () { select(e); } },
        h('td', { class: 'muted' }, time(e.timestamp)), h('td', { class: 'mono' }, e.eventType), h('td', null, e.actor || '—'),
        h('td', null, e.organizationId || '—'), h('td', null, e.processed ? h('span', { class: 'badge ok' }, 'processed') : h('span', { class: 'badge warn' }, 'pending'))));
    });
    $('more').style.display = state.cursor ? '' : 'none';
  }

  function select(event) {
    state.selected = event;
    var el = clear($('detail'));
    el.append(h('h3', { class: 'mono' }, event.eventType + ' · ' + event.eventId), h('pre', { class: 'mono' }, JSON.stringify(event, null, 2)));
    var deliveries = h('div', null, h('div', { class: 'muted' }, 'Loading deliveries…'));
    el.append(h('h3', null, 'Deliveries'), deliveries);
    $('detail-section').style.display = '';
    api('events/' + encodeURIComponent(event.eventId)).then(function (d) {
      clear(deliveries);
      var rows = [];
      d.attempts.forEach(function (a) { rows.push([a.subscriber, a.attempt, a.outcome, age(a.durationMs), a.error ? a.error.name + ': ' + a.error.message : '', time(a.at)]); });
      d.deadLetters.forEach(function (x) { rows.push([x.subscriber, x.attempts, 'dead letter', '', x.error.name + ': ' + x.error.message, time(x.failedAt)]); });
      if (rows.length === 0) { deliveries.append(h('div', { class: 'muted' }, 'No attempt seen by this process and no dead letter for this event.')); return; }
      var t = h('table', null, h('thead', null, h('tr', null, h('th', null, 'subscriber'), h('th', { class: 'num' }, 'attempt'), h('th', null, 'outcome'), h('th', { class: 'num' }, 'time'), h('th', null, 'error'), h('th', null, 'at'))));
      var tb = h('tbody'); rows.forEach(function (r) { tb.append(h('tr', null, h('td', { class: 'mono' }, r[0]), h('td', { class: 'num' }, r[1]), h('td', null, r[2]), h('td', { class: 'num' }, r[3]), h('td', { class: 'err' }, r[4]), h('td', { class: 'muted' }, r[5]))); });
      t.append(tb); deliveries.append(t);
    }).catch(showError);
  }

  function redrive(filter) {
    return api('dead-letters/redrive', Object.assign({ dryRun: true }, filter)).then(function (dry) {
      if (dry.count === 0) { toast('Nothing to redrive.'); return; }
      return ask('This will redrive ' + dry.count + ' dead letter' + (dry.count === 1 ? '' : 's') + '.', 'Redrive ' + dry.count).then(function (yes) {
        if (!yes) return;
        return api('dead-letters/redrive', filter).then(function (r) { toast('Redriven: ' + r.redriven); return refresh(); });
      });
    }).catch(showError);
  }
  function discard(d) {
    return ask('This will discard the dead letter of ' + d.subscriber + ' for ' + d.eventType + ' for good.', 'Discard').then(function (yes) {
      if (!yes) return;
      return api('dead-letters/discard', { id: d.id }).then(function () { toast('Discarded.'); return refresh(); });
    }).catch(showError);
  }

  function timelineQuery(cursor) {
    var q = new URLSearchParams();
    var type = $('f-type').value, actor = $('f-actor').value.trim(), org = $('f-org').value.trim();
    if (type) q.append('eventTypes', type);
    if (actor) q.set('actor', actor);
    if (org) q.set('organizationId', org);
    q.set('limit', '25');
    if (cursor) q.set('cursor', cursor);
    return 'timeline?' + q.toString();
  }
  function loadTimeline(more) {
    return api(timelineQuery(more ? state.cursor : null)).then(function (page) {
      state.timeline = more ? state.timeline.concat(page.events) : page.events;
      state.cursor = page.nextCursor;
      renderTimeline();
    });
  }
  var refreshing = null;
  function refresh() {
    if (refreshing) return refreshing;
    refreshing = Promise.all([
      api('overview').then(renderOverview),
      api('dead-letters').then(function (d) { state.deadLetters = d.deadLetters; renderDeadLetters(); }),
      state.timeline.length <= 25 ? loadTimeline(false) : null,
    ]).catch(showError).then(function () { refreshing = null; document.body.setAttribute('data-loaded', String(Date.now())); });
    return refreshing;
  }

  function live() {
    var init = { headers: headers(false), credentials: 'same-origin' };
    fetch(base + 'stream', init).then(function (res) {
      if (!res.ok || !res.body) throw new Error('stream ' + res.status);
      $('live').className = 'on';
      var reader = res.body.getReader(), decoder = new TextDecoder(), buffer = '', pending = null;
      function read() {
        return reader.read().then(function (r) {
          if (r.done) throw new Error('stream ended');
          buffer += decoder.decode(r.value, { stream: true });
          var parts = buffer.split('\n\n'); buffer = parts.pop();
          parts.forEach(function (p) { if (/^event: change/m.test(p) && !pending) pending = setTimeout(function () { pending = null; refresh(); }, 300); });
          return read();
        });
      }
      return read();
    }).catch(function () { $('live').className = ''; setTimeout(live, 3000); });
  }

  $('apply').addEventListener('click', function () { loadTimeline(false).catch(showError); });
  $('more').addEventListener('click', function () { loadTimeline(true).catch(showError); });
  $('redrive-all').addEventListener('click', function () { redrive({}); });
  $('close-detail').addEventListener('click', function () { $('detail-section').style.display = 'none'; });
  refresh();
  live();
  setInterval(refresh, 15000);
})();
`;

const BODY = String.raw`
<header>
  <h1>Event bus</h1><span id="status" class="badge">loading</span><span id="storage" class="muted"></span>
  <span id="readonly" class="badge warn" style="display:none">read-only</span>
  <span class="spacer"></span><span id="live">live</span>
</header>
<main>
  <section class="w12"><h2>Overview</h2><div id="cards" class="cards"></div><div id="counting" class="muted" style="margin-top:8px"></div></section>
  <section class="w12"><h2>Health warnings</h2><div id="warnings"></div></section>
  <section class="w8"><h2>Throughput and failures per minute (last hour)</h2>
    <div class="legend"><span><i style="background:#2563eb"></i>published</span><span><i style="background:#16a34a"></i>succeeded</span><span><i style="background:#dc2626"></i>failed</span></div>
    <div id="chart"></div></section>
  <section class="w4"><h2>Event types</h2><div id="types"></div></section>
  <section class="w12"><h2>Subscribers</h2>
    <table><thead><tr><th>subscriber</th><th class="num">pending</th><th class="num">due</th><th class="num">running</th><th class="num">retrying</th><th class="num">scheduled</th><th class="num">lag (oldest pending)</th><th>last seen</th></tr></thead>
    <tbody id="subscribers"></tbody></table></section>
  <section class="w12"><h2>Dead letters (<span id="dl-count">0</span>)</h2>
    <div class="filters"><button id="redrive-all" class="primary">Redrive all…</button></div>
    <table><thead><tr><th>event type</th><th>subscriber</th><th class="num">attempts</th><th>last error</th><th>failed at</th><th></th></tr></thead>
    <tbody id="dead-letters"></tbody></table></section>
  <section id="detail-section" class="w12" style="display:none"><h2>Event <button id="close-detail" style="float:right">Close</button></h2><div id="detail"></div></section>
  <section class="w12"><h2>Timeline</h2>
    <div class="filters">
      <select id="f-type" aria-label="event type"><option value="">all event types</option></select>
      <input id="f-actor" placeholder="actor" aria-label="actor"><input id="f-org" placeholder="organization" aria-label="organization">
      <button id="apply">Apply</button>
    </div>
    <table><thead><tr><th>time</th><th>event type</th><th>actor</th><th>organization</th><th>state</th></tr></thead><tbody id="timeline"></tbody></table>
    <div style="margin-top:8px"><button id="more" style="display:none">Older events</button></div></section>
</main>
<div id="modal"><div class="box"><div id="modal-text"></div><div class="actions"><button id="modal-cancel">Cancel</button><button id="modal-ok" class="primary">OK</button></div></div></div>
<div id="toast" role="status"></div>
`;

/** The whole page. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Event bus dashboard</title><style>${STYLE}</style></head>
<body>${BODY}<script>${SCRIPT}</script></body></html>
`;
