// tandem dashboard. Follows /api/events: `status` (a snapshot every second), `history` (10 minutes
// of one-second points and recent events, on connect), `tick` (each new point). Plain browser
// script, no build step; uPlot draws the charts. Every text from the config goes in through
// textContent, never innerHTML.
'use strict';
(function () {
  var MAX_POINTS = 600;
  var TOKEN_KEY = 'tandem.adminToken';
  var status = null;
  var points = [];
  var events = [];
  var roleMarks = [];
  var charts = [];
  var listenerCards = new Map();
  var upstreamCards = new Map();

  // ---- small helpers -------------------------------------------------------------------------
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function setText(e, text) { var t = String(text); if (e.textContent !== t) e.textContent = t; }
  function cssVar(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function fmtRate(r) { return r === null || r === undefined ? '–' : r < 10 ? (Math.round(r * 10) / 10).toString() : Math.round(r).toLocaleString('en'); }
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '–';
    if (ms === 0) return '0';
    if (ms >= 1000) return (ms / 1000).toFixed(ms >= 10000 ? 0 : 1) + ' s';
    return (ms < 1 ? ms.toFixed(2) : ms < 10 ? ms.toFixed(1) : Math.round(ms).toString()) + ' ms';
  }
  function fmtBytes(b) {
    if (b === null || b === undefined) return '–';
    var units = ['B', 'KB', 'MB', 'GB'];
    var i = 0;
    while (b >= 1000 && i < units.length - 1) { b /= 1000; i++; }
    return (b < 10 && i > 0 ? b.toFixed(1) : Math.round(b)) + ' ' + units[i];
  }
  function fmtPct(x) { return x === null || x === undefined ? '–' : (x * 100 < 10 ? (x * 100).toFixed(1) : Math.round(x * 100)) + ' %'; }
  function fmtAge(s) {
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    if (m) return m + 'm ' + (s % 60) + 's';
    return s + 's';
  }
  function clock(t, seconds) {
    var d = new Date(t * 1000);
    var two = function (n) { return n < 10 ? '0' + n : String(n); };
    return two(d.getHours()) + ':' + two(d.getMinutes()) + (seconds ? ':' + two(d.getSeconds()) : '');
  }
  function fmtTime(ms) { return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }); }
  function sum(xs) { var s = 0, any = false; xs.forEach(function (x) { if (x !== null && x !== undefined) { s += x; any = true; } }); return any ? s : null; }
  function last(n) { return points.slice(Math.max(0, points.length - n)); }

  // ---- charts --------------------------------------------------------------------------------
  // Vertical dashed lines at role changes, drawn on every chart.
  var roleMarksPlugin = {
    hooks: {
      draw: [function (u) {
        if (roleMarks.length === 0) return;
        var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
        ctx.save();
        ctx.strokeStyle = cssVar('--c5');
        ctx.fillStyle = cssVar('--c5');
        ctx.lineWidth = 2 * devicePixelRatio;
        ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
        ctx.font = '600 ' + Math.round(11 * devicePixelRatio) + 'px system-ui, sans-serif';
        roleMarks.forEach(function (m) {
          var x = Math.round(u.valToPos(m.t, 'x', true));
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
          ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
          ctx.fillText(m.label, x + 4 * devicePixelRatio, top + 12 * devicePixelRatio);
        });
        ctx.restore();
      }],
    },
  };

  // Counts and bytes get whole-number gridlines, so an idle chart does not read 0.3, 0.5, 0.8.
  var WHOLE = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2.5e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8, 1e9, 1e10];
  function zeroBased(u, min, max) { return [0, max > 0 ? max * 1.15 : 1]; }

  /** spec: { key, title, series: [{ label, color, value: (point) => number|null }], fmt } */
  function makeChart(container, spec) {
    var box = el('div', { class: 'chart', 'data-chart': spec.key });
    var head = el('div', { class: 'chart-head' });
    head.appendChild(el('h3', null, spec.title));
    // Own legend: the series and their newest values, readable from a distance.
    var legend = el('ul', { class: 'legend' });
    var values = spec.series.map(function (s) {
      var li = el('li');
      var sw = el('span', { class: 'swatch' });
      sw.style.background = 'var(' + s.color + ')';
      li.appendChild(sw);
      li.appendChild(el('span', null, s.label + ' '));
      var v = el('b', null, '–');
      li.appendChild(v);
      legend.appendChild(li);
      return v;
    });
    head.appendChild(legend);
    box.appendChild(head);
    var plot = el('div', { class: 'plot' });
    box.appendChild(plot);
    container.appendChild(box);
    var chart = { spec: spec, box: box, plot: plot, u: null, values: values };
    charts.push(chart);
    buildPlot(chart);
    return chart;
  }

  function buildPlot(chart) {
    var spec = chart.spec;
    if (chart.u) chart.u.destroy();
    var ink = cssVar('--muted'), grid = cssVar('--grid');
    var axis = { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: '13px system-ui, sans-serif' };
    var opts = {
      width: Math.max(200, chart.plot.clientWidth),
      height: 200,
      pxAlign: 0,
      // Room on the right for the newest time label.
      padding: [10, 32, 0, 0],
      scales: { x: { time: true }, y: { range: zeroBased } },
      axes: [
        Object.assign({}, axis, { space: 90, values: function (u, splits, i, space, incr) { return splits.map(function (t) { return clock(t, incr < 60); }); } }),
        Object.assign({}, axis, spec.fmt === fmtMs ? {} : { incrs: WHOLE }, { size: 72, values: function (u, vals) { return vals.map(spec.fmt); } }),
      ],
      series: [{}].concat(spec.series.map(function (s) {
        return { label: s.label, stroke: cssVar(s.color), width: 2, spanGaps: !!spec.spanGaps, points: { show: false } };
      })),
      legend: { show: false },
      cursor: { points: { size: 6 }, drag: { x: false, y: false } },
      plugins: [roleMarksPlugin],
    };
    chart.u = new uPlot(opts, chartData(spec), chart.plot);
  }

  function chartData(spec) {
    var xs = points.map(function (p) { return p.t; });
    return [xs].concat(spec.series.map(function (s) { return points.map(s.value); }));
  }

  function refreshCharts() {
    charts.forEach(function (c) {
      if (!c.box.isConnected) return;
      var data = chartData(c.spec);
      c.u.setData(data);
      var lastIndex = data[0].length - 1;
      // For tests and for anyone inspecting the page: the newest point's time and total.
      c.box.setAttribute('data-points', String(lastIndex + 1));
      c.box.setAttribute('data-marks', String(roleMarks.length));
      c.values.forEach(function (v, i) { setText(v, lastIndex >= 0 ? c.spec.fmt(data[i + 1][lastIndex]) : '–'); });
      if (lastIndex >= 0) {
        c.box.setAttribute('data-last-t', String(data[0][lastIndex]));
        c.box.setAttribute('data-last', String(sum(data.slice(1).map(function (col) { return col[lastIndex]; })) || 0));
      }
    });
  }

  var resize = new ResizeObserver(function (entries) {
    entries.forEach(function (entry) {
      var c = charts.find(function (x) { return x.plot === entry.target; });
      if (c && c.u) c.u.setSize({ width: Math.max(200, Math.floor(entry.contentRect.width)), height: 200 });
    });
  });

  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', function () { charts.forEach(buildPlot); });

  // ---- listeners -----------------------------------------------------------------------------
  function lp(name) { return function (p) { return p.listeners[name] || null; }; }

  function listenerCard(l) {
    var card = listenerCards.get(l.name);
    if (card && card.protocol === l.protocol) return card;
    if (card) card.section.remove();
    var section = el('section', { class: 'panel', 'data-listener': l.name });
    var h = el('h2', null, l.name);
    var sub = el('span', { class: 'sub' });
    h.appendChild(sub);
    section.appendChild(h);
    var stats = el('p', { class: 'stats' });
    section.appendChild(stats);
    var grid = el('div', { class: 'charts' });
    section.appendChild(grid);
    $('listeners').appendChild(section);
    var get = lp(l.name);
    var val = function (f) { return function (p) { var x = get(p); return x === null ? null : f(x); }; };
    var specs = l.protocol === 'http'
      ? [
          { key: 'listener:' + l.name + ':requests', title: 'Requests/s by status', fmt: fmtRate, series: [
            { label: '2xx', color: '--c2', value: val(function (x) { return x.codes[1]; }) },
            { label: '3xx', color: '--c1', value: val(function (x) { return x.codes[2]; }) },
            { label: '4xx', color: '--c3', value: val(function (x) { return x.codes[3]; }) },
            { label: '5xx', color: '--c4', value: val(function (x) { return x.codes[4]; }) },
            { label: 'limited', color: '--c5', value: val(function (x) { return x.limited; }) },
          ] },
          { key: 'listener:' + l.name + ':latency', title: 'Latency', fmt: fmtMs, spanGaps: true, series: [
            { label: 'p50', color: '--c2', value: val(function (x) { return x.p50; }) },
            { label: 'p95', color: '--c3', value: val(function (x) { return x.p95; }) },
            { label: 'p99', color: '--c4', value: val(function (x) { return x.p99; }) },
          ] },
        ]
      : [
          { key: 'listener:' + l.name + ':bytes', title: 'Throughput (per s, at close)', fmt: fmtBytes, series: [
            { label: 'in', color: '--c1', value: val(function (x) { return x.bytesIn; }) },
            { label: 'out', color: '--c6', value: val(function (x) { return x.bytesOut; }) },
          ] },
          { key: 'listener:' + l.name + ':connections', title: 'Connections', fmt: fmtRate, series: [
            { label: 'new/s', color: '--c2', value: val(function (x) { return x.conns; }) },
            { label: 'open', color: '--c1', value: val(function (x) { return x.active; }) },
            { label: 'limited/s', color: '--c5', value: val(function (x) { return x.limited; }) },
          ] },
        ];
    var made = specs.map(function (s) { return makeChart(grid, s); });
    made.forEach(function (c) { resize.observe(c.plot); });
    card = { section: section, sub: sub, stats: stats, protocol: l.protocol, charts: made };
    listenerCards.set(l.name, card);
    return card;
  }

  function stat(parent, label, value) {
    var s = el('span', null, label + ' ');
    s.appendChild(el('b', null, value));
    parent.appendChild(s);
  }

  function renderListeners() {
    var seen = new Set();
    var recent = last(10);
    status.listeners.forEach(function (l) {
      seen.add(l.name);
      var card = listenerCard(l);
      setText(card.sub, l.protocol + ' · ' + l.listen);
      var xs = recent.map(function (p) { return p.listeners[l.name]; }).filter(Boolean);
      var stats = el('p', { class: 'stats' });
      if (l.protocol === 'http') {
        var rps = xs.length ? sum(xs.map(function (x) { return x.codes.reduce(function (a, b) { return a + b; }, 0); })) / xs.length : null;
        stat(stats, 'req/s', fmtRate(rps));
        stat(stats, 'errors', fmtPct(avgRate(xs)));
        stat(stats, 'p95', fmtMs(xs.length ? xs[xs.length - 1].p95 : null));
      } else {
        stat(stats, 'conn/s', fmtRate(xs.length ? sum(xs.map(function (x) { return x.conns; })) / xs.length : null));
        stat(stats, 'failed', fmtPct(avgRate(xs)));
      }
      stat(stats, 'open', l.activeConnections);
      card.stats.replaceWith(stats);
      card.stats = stats;
    });
    listenerCards.forEach(function (card, name) {
      if (!seen.has(name)) { card.section.remove(); listenerCards.delete(name); }
    });
  }

  /** Errors over ended requests across points, weighted by traffic. */
  function avgRate(xs) {
    var errs = 0, total = 0;
    xs.forEach(function (x) {
      var n = x.codes.reduce(function (a, b) { return a + b; }, 0) || x.conns;
      if (x.errorRate !== null) { errs += x.errorRate * Math.max(n, 1); total += Math.max(n, 1); }
    });
    return total ? errs / total : null;
  }

  // ---- upstreams and server controls ---------------------------------------------------------
  function upstreamCard(u) {
    var key = u.name + '\n' + u.servers.map(function (s) { return s.address; }).join('\n');
    var card = upstreamCards.get(u.name);
    if (card && card.key === key) return card;
    if (card) card.section.remove();
    var section = el('section', { class: 'panel', 'data-upstream': u.name });
    var h = el('h2', null, u.name);
    var sub = el('span', { class: 'sub' });
    h.appendChild(sub);
    section.appendChild(h);
    var wrap = el('div', { class: 'table-wrap' });
    var table = el('table');
    var head = el('tr');
    [['server'], ['state'], ['checks'], ['weight', 'num'], ['ejected', 'num'], ['active', 'num'], ['share'], ['response', 'num'], ['requests', 'num'], ['']].forEach(function (c) {
      head.appendChild(el('th', c[1] ? { class: c[1] } : null, c[0]));
    });
    table.appendChild(head);
    var rows = new Map();
    u.servers.forEach(function (s) {
      var tr = el('tr', { 'data-server': u.name + '/' + s.address });
      var cells = {};
      ['addr', 'state', 'checks', 'weight', 'ejected', 'active', 'share', 'resp', 'requests', 'actions'].forEach(function (name) {
        var td = el('td', { class: ['weight', 'ejected', 'active', 'resp', 'requests'].indexOf(name) >= 0 ? 'num' : name });
        cells[name] = td;
        tr.appendChild(td);
      });
      cells.addrText = el('span', null, s.address);
      cells.addr.appendChild(cells.addrText);
      cells.backupTag = el('span', { class: 'tag' }, 'backup');
      cells.addr.appendChild(cells.backupTag);
      var badge = el('span', { class: 'badge' });
      cells.state.appendChild(badge);
      cells.badge = badge;
      var bar = el('span', { class: 'sharebar' });
      var fill = el('span');
      bar.appendChild(fill);
      cells.share.appendChild(bar);
      cells.fill = fill;
      cells.shareText = el('span');
      cells.share.appendChild(cells.shareText);
      var actions = el('div', { class: 'actions' });
      cells.buttons = {};
      [['drain', 'Drain'], ['disable', 'Disable'], ['enable', 'Enable'], ['weight', 'Weight']].forEach(function (a) {
        var b = el('button', { type: 'button', 'data-action': a[0] }, a[1]);
        b.addEventListener('click', function () { onAction(u.name, s.address, a[0], b); });
        actions.appendChild(b);
        cells.buttons[a[0]] = b;
      });
      cells.actions.appendChild(actions);
      table.appendChild(tr);
      rows.set(s.address, { tr: tr, cells: cells });
    });
    wrap.appendChild(table);
    section.appendChild(wrap);
    var note = el('p', { class: 'note', role: 'status' });
    section.appendChild(note);
    var grid = el('div', { class: 'charts' });
    section.appendChild(grid);
    $('upstreams').appendChild(section);
    var colors = ['--c1', '--c2', '--c3', '--c6', '--c5', '--c4'];
    var serverSeries = function (f) {
      return u.servers.map(function (s, i) {
        var k = u.name + '/' + s.address;
        return { label: s.address, color: colors[i % colors.length], value: function (p) { var x = p.servers[k]; return x ? f(x) : null; } };
      });
    };
    var made = [
      makeChart(grid, { key: 'upstream:' + u.name + ':requests', title: 'Requests/s per server', fmt: fmtRate, series: serverSeries(function (x) { return x.requests; }) }),
      makeChart(grid, { key: 'upstream:' + u.name + ':response', title: 'Response time per server', fmt: fmtMs, spanGaps: true, series: serverSeries(function (x) { return x.responseMs; }) }),
    ];
    made.forEach(function (c) { resize.observe(c.plot); });
    card = { key: key, section: section, sub: sub, rows: rows, note: note };
    upstreamCards.set(u.name, card);
    return card;
  }

  function renderUpstreams() {
    var seen = new Set();
    var recent = last(10);
    status.upstreams.forEach(function (u) {
      seen.add(u.name);
      var card = upstreamCard(u);
      var up = u.servers.filter(function (s) { return s.state === 'up'; }).length;
      setText(card.sub, u.balance + ' · ' + up + '/' + u.servers.length + ' up');
      u.servers.forEach(function (s) {
        var row = card.rows.get(s.address);
        if (!row) return;
        var c = row.cells;
        setText(c.addrText, s.address);
        c.backupTag.hidden = !s.backup;
        setText(c.badge, s.state);
        if (c.badge.getAttribute('data-state') !== s.state) {
          if (c.badge.getAttribute('data-state')) { row.tr.classList.remove('flash'); void row.tr.offsetWidth; row.tr.classList.add('flash'); }
          c.badge.setAttribute('data-state', s.state);
          row.tr.setAttribute('data-state', s.state);
        }
        setText(c.checks, s.checks ? (s.checks.toward === 'down' ? 'fall ' : 'rise ') + s.checks.streak + '/' + s.checks.of : '–');
        setText(c.weight, s.weight + (s.slowStart !== null && s.slowStart !== undefined ? ' · ramp ' + Math.round(s.slowStart * 100) + '%' : ''));
        setText(c.ejected, s.ejectedForMs > 0 ? Math.ceil(s.ejectedForMs / 1000) + ' s' : '–');
        setText(c.active, s.active);
        var key = u.name + '/' + s.address;
        var mine = sum(recent.map(function (p) { return p.servers[key] ? p.servers[key].requests : null; }));
        var all = sum(recent.map(function (p) {
          return sum(u.servers.map(function (o) { var x = p.servers[u.name + '/' + o.address]; return x ? x.requests : null; }));
        }));
        var share = all ? (mine || 0) / all : null;
        c.fill.style.width = share === null ? '0' : Math.round(share * 100) + '%';
        setText(c.shareText, share === null ? '–' : Math.round(share * 100) + '%');
        setText(c.resp, s.responseTimeMs > 0 ? fmtMs(s.responseTimeMs) : '–');
        setText(c.requests, s.requests.toLocaleString('en'));
        var admin = s.adminState || (s.state === 'drain' ? 'drain' : s.state === 'disabled' ? 'disabled' : 'enabled');
        c.buttons.drain.disabled = admin === 'drain';
        c.buttons.disable.disabled = admin === 'disabled';
        c.buttons.enable.disabled = admin === 'enabled';
      });
    });
    upstreamCards.forEach(function (card, name) {
      if (!seen.has(name)) { card.section.remove(); upstreamCards.delete(name); }
    });
  }

  /** A mutating admin call; asks for the token on 401 and keeps it for this tab only. */
  function adminCall(method, path, body) {
    var send = function () {
      var headers = { 'content-type': 'application/json' };
      var token = sessionStorage.getItem(TOKEN_KEY);
      if (token) headers.authorization = 'Bearer ' + token;
      return fetch(path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) });
    };
    return send().then(function (res) {
      if (res.status !== 401) return res;
      var token = window.prompt('This admin API needs its token (admin.token):');
      if (!token) return res;
      sessionStorage.setItem(TOKEN_KEY, token.trim());
      return send();
    });
  }

  function onAction(upstream, address, action, button) {
    var card = upstreamCards.get(upstream);
    var body;
    if (action === 'weight') {
      var answer = window.prompt('New weight for ' + address + ' (1–256):');
      if (answer === null) return;
      body = { weight: Number(answer) };
    }
    var path = 'api/upstreams/' + encodeURIComponent(upstream) + '/servers/' + encodeURIComponent(address) + '/' + action;
    button.disabled = true;
    adminCall(action === 'weight' ? 'PUT' : 'POST', path, body)
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (j) {
          if (card) setText(card.note, res.ok ? address + ': ' + j.state + ', weight ' + j.weight : address + ': ' + (j.error || 'HTTP ' + res.status));
        });
      })
      .catch(function (err) { if (card) setText(card.note, address + ': ' + err.message); })
      .then(refreshStatus);
  }

  function refreshStatus() {
    return fetch('api/status', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(onStatus, function () {});
  }

  // ---- pair, header, totals, events ----------------------------------------------------------
  function renderPair() {
    var peer = status.peer;
    $('pair').hidden = !peer;
    if (!peer) return;
    var role = $('pair-role');
    setText(role, peer.role);
    role.setAttribute('data-role', peer.role);
    setText($('pair-term'), peer.term);
    var other = peer.other;
    var pr = $('pair-peer-role');
    setText(pr, other ? other.role : 'unknown');
    pr.setAttribute('data-role', other && other.up ? other.role : '');
    setText($('pair-peer-id'), other ? other.id : '');
    var hb = $('pair-heartbeat');
    setText(hb, other ? fmtMs(other.lastHeartbeatAgeMs) + ' ago' : 'never heard');
    hb.className = other && other.up ? 'good' : 'poor';
    var links = peer.links || [];
    var upLinks = links.filter(function (l) { return l.up; }).length;
    var le = $('pair-links');
    setText(le, links.length ? upLinks + '/' + links.length + ' up' : '–');
    le.title = links.map(function (l) { return l.address + ' ' + (l.up ? 'up' : 'down'); }).join('\n');
    le.className = upLinks === links.length && links.length ? 'good' : upLinks ? 'meh' : 'poor';
    var w = peer.witness, we = $('pair-witness');
    setText(we, w ? w.kind + ' ' + w.state + (w.lease ? ' · lease' : '') : 'none');
    we.title = w ? w.address : '';
    we.className = !w ? '' : w.state === 'up' ? 'good' : w.state === 'down' ? 'poor' : 'meh';
    var sync = $('pair-sync');
    setText(sync, peer.inSync ? 'in sync' : 'not in sync');
    sync.className = peer.inSync ? 'good' : 'poor';
    var fault = $('pair-fault');
    fault.hidden = !peer.configFault;
    setText(fault, peer.configFault || '');
  }

  function renderHeader() {
    setText($('node'), status.id);
    var role = $('role');
    setText(role, status.role);
    role.setAttribute('data-role', status.role);
    setText($('version'), 'v' + status.version);
    setText($('uptime'), fmtAge(status.uptime));
    setText($('config'), status.config.file + ' (' + status.config.hash.slice(0, 12) + ')');
    document.title = status.id + ' · ' + status.role + ' · tandem';
  }

  function renderTotals() {
    var recent = last(10);
    var reqs = 0, errs = 0, p95 = null, n = recent.length;
    recent.forEach(function (p) {
      Object.keys(p.listeners).forEach(function (name) {
        var x = p.listeners[name];
        var total = x.codes.reduce(function (a, b) { return a + b; }, 0);
        reqs += total;
        errs += x.codes[4];
      });
    });
    // The newest second that answered anything: an idle second has no latency to show.
    for (var i = recent.length - 1; i >= 0 && p95 === null; i--) {
      Object.keys(recent[i].listeners).forEach(function (name) {
        var v = recent[i].listeners[name].p95;
        if (v !== null && (p95 === null || v > p95)) p95 = v;
      });
    }
    setText($('kpi-rps'), n ? fmtRate(reqs / n) : '–');
    var errRate = reqs ? errs / reqs : null;
    var ek = $('kpi-errors');
    setText(ek, fmtPct(errRate === null ? 0 : errRate));
    ek.setAttribute('data-level', errRate === null ? '' : errRate >= 0.05 ? 'bad' : errRate > 0 ? 'warn' : '');
    setText($('kpi-p95'), fmtMs(p95));
    setText($('kpi-active'), status.listeners.reduce(function (a, l) { return a + l.activeConnections; }, 0).toLocaleString('en'));
    var all = 0, up = 0;
    status.upstreams.forEach(function (u) { u.servers.forEach(function (s) { all++; if (s.state === 'up') up++; }); });
    var uk = $('kpi-up');
    setText(uk, up + '/' + all);
    uk.setAttribute('data-level', up === all ? '' : up === 0 ? 'bad' : 'warn');
  }

  function renderEvents() {
    var list = $('events');
    if (events.length === 0) return;
    list.replaceChildren.apply(list, events.slice().reverse().map(function (e) {
      var li = el('li', { 'data-kind': e.kind });
      li.appendChild(el('span', { class: 'dot', 'data-level': e.level }));
      li.appendChild(el('span', null, e.text));
      li.appendChild(el('time', { datetime: new Date(e.t).toISOString() }, fmtTime(e.t)));
      return li;
    }));
  }

  function addEvents(list) {
    list.forEach(function (e) {
      events.push(e);
      if (e.kind === 'role') roleMarks.push({ t: e.t / 1000, label: e.text.replace(/^role \S+ → (\S+).*$/, '$1') });
    });
    while (events.length > 50) events.shift();
    var oldest = points.length ? points[0].t : 0;
    roleMarks = roleMarks.filter(function (m) { return m.t >= oldest; });
    renderEvents();
  }

  // ---- the stream ----------------------------------------------------------------------------
  function onStatus(s) {
    status = s;
    renderHeader();
    renderPair();
    renderListeners();
    renderUpstreams();
    renderTotals();
  }

  function onHistory(h) {
    points = h.points.slice(-MAX_POINTS);
    events = [];
    roleMarks = [];
    addEvents(h.events);
    refreshCharts();
    if (status) { renderListeners(); renderTotals(); }
  }

  function onTick(t) {
    t.points.forEach(function (p) { points.push(p); });
    if (points.length > MAX_POINTS) points.splice(0, points.length - MAX_POINTS);
    if (t.events.length) addEvents(t.events);
    refreshCharts();
  }

  function connect() {
    var conn = $('conn');
    var es = new EventSource('api/events');
    es.addEventListener('open', function () { setText(conn, 'live'); conn.setAttribute('data-state', 'live'); });
    es.addEventListener('error', function () { setText(conn, 'reconnecting'); conn.setAttribute('data-state', 'lost'); });
    es.addEventListener('status', function (m) { onStatus(JSON.parse(m.data)); });
    es.addEventListener('history', function (m) { onHistory(JSON.parse(m.data)); });
    es.addEventListener('tick', function (m) { onTick(JSON.parse(m.data)); });
  }

  connect();
})();
