// The live dashboard served at GET /: one self-contained page (no external assets; the browser
// may have no network) that follows /api/events. Kept as a TS module so `tsc` puts it in dist/.
// The script builds every cell with textContent, never innerHTML: names come from the config.
import { createHash } from 'node:crypto'

const STYLE = `
:root { --bg: #f6f7f9; --card: #fff; --ink: #1d2330; --muted: #6b7280; --line: #e5e7eb;
  --up: #15803d; --down: #b91c1c; --drain: #b45309; --disabled: #6b7280; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--ink); }
header { display: flex; flex-wrap: wrap; gap: 24px; align-items: baseline; padding: 16px 24px; background: var(--ink); color: #fff; }
header h1 { margin: 0; font-size: 18px; }
header .kv { color: #cbd5e1; }
header .kv b { color: #fff; font-weight: 600; }
main, #upstreams { display: grid; gap: 16px; }
main { padding: 16px 24px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
h2 { margin: 0 0 8px; font-size: 15px; }
h2 .sub { color: var(--muted); font-weight: 400; margin-left: 8px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 500; font-size: 12px; text-transform: uppercase; }
td.num, th.num { text-align: right; }
.pill { display: inline-block; min-width: 64px; text-align: center; padding: 1px 8px; border-radius: 999px; color: #fff; font-size: 12px; }
.s-up { background: var(--up); } .s-down { background: var(--down); }
.s-drain { background: var(--drain); } .s-disabled { background: var(--disabled); }
.role-active { color: #86efac; } .role-standby { color: #fcd34d; } .role-fault { color: #fca5a5; }
.conn-live { color: #86efac; } .conn-lost { color: #fca5a5; }
tr.flash td { background: #fef9c3; }
.muted { color: var(--muted); }
#log { margin: 0; padding-left: 18px; color: var(--muted); }
`

const SCRIPT = `
'use strict';
var prev = null;
function el(tag, text, cls) {
  var e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function byId(id) { return document.getElementById(id); }
function fmtUptime(s) {
  var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + (d || h || m ? m + 'm ' : '') + (s % 60) + 's';
}
function fmtRate(r) { return r === null ? '-' : r < 10 ? r.toFixed(1) : String(Math.round(r)); }
function row(cells) {
  var tr = el('tr');
  cells.forEach(function (c) { tr.appendChild(c); });
  return tr;
}
function headRow(names) {
  return row(names.map(function (n) { return el('th', n.replace('#', ''), n.charAt(0) === '#' ? 'num' : ''); }));
}
function num(v) { return el('td', v, 'num'); }
function rates(snap, now) {
  var out = {};
  if (prev !== null) {
    var dt = (now - prev.at) / 1000;
    snap.upstreams.forEach(function (u) {
      u.servers.forEach(function (s) {
        var key = u.name + ' ' + s.address, before = prev.requests[key];
        out[key] = before === undefined || dt <= 0 ? null : Math.max(0, s.requests - before) / dt;
      });
    });
  }
  var requests = {};
  snap.upstreams.forEach(function (u) { u.servers.forEach(function (s) { requests[u.name + ' ' + s.address] = s.requests; }); });
  prev = { at: now, requests: requests };
  return out;
}
function render(snap) {
  var r = rates(snap, Date.now());
  byId('node').textContent = snap.id;
  var role = byId('role');
  role.textContent = snap.role;
  role.className = 'role-' + snap.role;
  byId('version').textContent = snap.version;
  byId('uptime').textContent = fmtUptime(snap.uptime);
  byId('config').textContent = snap.config.file + ' (' + snap.config.hash.slice(0, 12) + ')';
  var total = 0, known = false;
  var lt = byId('listeners');
  lt.replaceChildren(headRow(['listener', 'protocol', 'address', '#active connections']));
  snap.listeners.forEach(function (l) {
    lt.appendChild(row([el('td', l.name), el('td', l.protocol), el('td', l.listen), num(l.activeConnections)]));
  });
  var box = byId('upstreams');
  box.replaceChildren();
  snap.upstreams.forEach(function (u) {
    var sec = el('section'), h = el('h2', u.name), t = el('table'), urate = 0, uknown = false;
    t.appendChild(headRow(['server', 'state', '#weight', '#active', '#requests', '#req/s', '#failures', '#response ms', 'last check']));
    u.servers.forEach(function (s) {
      var key = u.name + ' ' + s.address, rate = r[key] === undefined ? null : r[key];
      if (rate !== null) { urate += rate; uknown = true; }
      var state = el('td'); state.appendChild(el('span', s.state, 'pill s-' + s.state));
      var check = s.lastCheck === null ? '-' : (s.lastCheck.ok ? 'pass' : 'fail') + (s.lastCheck.detail ? ': ' + s.lastCheck.detail : '');
      var tr = row([el('td', s.address + (s.backup ? ' (backup)' : '')), state, num(s.weight), num(s.active),
        num(s.requests), num(fmtRate(rate)), num(s.failures), num(s.responseTimeMs.toFixed(1)), el('td', check, 'muted')]);
      tr.id = 'srv-' + key;
      t.appendChild(tr);
    });
    if (uknown) { total += urate; known = true; }
    h.appendChild(el('span', u.balance + ' \u00b7 ' + fmtRate(uknown ? urate : null) + ' req/s', 'sub'));
    sec.appendChild(h);
    sec.appendChild(t);
    box.appendChild(sec);
  });
  byId('rate').textContent = fmtRate(known ? total : null);
}
function onServer(e) {
  var key = e.upstream + ' ' + e.server;
  var log = byId('log');
  log.insertBefore(el('li', new Date().toLocaleTimeString() + '  ' + e.upstream + ' / ' + e.server + ': ' + e.from + ' \u2192 ' + e.to + ' (' + e.reason + ')'), log.firstChild);
  while (log.children.length > 10) log.removeChild(log.lastChild);
  var tr = document.getElementById('srv-' + key);
  if (tr) tr.className = 'flash';
}
function connect() {
  var conn = byId('conn');
  var es = new EventSource('api/events');
  es.addEventListener('open', function () { conn.textContent = 'live'; conn.className = 'conn-live'; });
  es.addEventListener('error', function () { conn.textContent = 'reconnecting'; conn.className = 'conn-lost'; prev = null; });
  es.addEventListener('status', function (m) { render(JSON.parse(m.data)); });
  es.addEventListener('server', function (m) { onServer(JSON.parse(m.data)); });
}
connect();
`

const BODY = `
<header>
  <h1>tandem</h1>
  <span class="kv">node <b id="node">-</b></span>
  <span class="kv">role <b id="role">-</b></span>
  <span class="kv">uptime <b id="uptime">-</b></span>
  <span class="kv">requests/s <b id="rate">-</b></span>
  <span class="kv">version <b id="version">-</b></span>
  <span class="kv"><b id="conn" class="conn-lost">connecting</b></span>
</header>
<main>
  <section><h2>Listeners</h2><table id="listeners"></table></section>
  <div id="upstreams"></div>
  <section><h2>Server state changes</h2><ol id="log"></ol></section>
  <p class="muted">config <span id="config">-</span></p>
</main>
`

function sha256 (text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`
}

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tandem</title>
<style>${STYLE}</style>
</head>
<body>${BODY}<script>${SCRIPT}</script>
</body>
</html>
`

/** Allows exactly the page's own inline style and script, and requests to this origin. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `style-src ${sha256(STYLE)}`,
  `script-src ${sha256(SCRIPT)}`,
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')
