// tandem dashboard, part 4 of 4: follows /api/events: `status` (a snapshot every second),
// `history` (10 minutes of one-second points and recent events, on connect), `tick` (each new
// point and event). Renders the header, totals, pair panel, listeners and the events list.
'use strict';
(function () {
  var T = window.tandem, S = T.state;
  var $ = T.$, el = T.el, setText = T.setText, sum = T.sum, last = T.last, fmtRate = T.fmtRate, fmtMs = T.fmtMs, fmtBytes = T.fmtBytes, fmtPct = T.fmtPct, fmtAge = T.fmtAge, fmtTime = T.fmtTime;
  var makeChart = T.makeChart, refreshCharts = T.refreshCharts, renderUpstreams = T.renderUpstreams;
  var MAX_POINTS = 600;
  var events = [];
  var listenerCards = new Map();

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
          { key: 'listener:' + l.name + ':latency', title: 'Latency', fmt: fmtMs, hold: 5, series: [
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
    made.forEach(function (c) { T.observeChart(c); });
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
    S.status.listeners.forEach(function (l) {
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

  function renderPair() {
    var peer = S.status.peer;
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
    setText($('node'), S.status.id);
    var role = $('role');
    setText(role, S.status.role);
    role.setAttribute('data-role', S.status.role);
    setText($('version'), 'v' + S.status.version);
    setText($('uptime'), fmtAge(S.status.uptime));
    setText($('config'), S.status.config.file + ' (' + S.status.config.hash.slice(0, 12) + ')');
    document.title = S.status.id + ' · ' + S.status.role + ' · tandem';
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
    setText($('kpi-active'), S.status.listeners.reduce(function (a, l) { return a + l.activeConnections; }, 0).toLocaleString('en'));
    var all = 0, up = 0;
    S.status.upstreams.forEach(function (u) { u.servers.forEach(function (s) { all++; if (s.state === 'up') up++; }); });
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
      if (e.kind === 'role') S.roleMarks.push({ t: e.t / 1000, label: e.text.replace(/^role \S+ → (\S+).*$/, '$1') });
    });
    while (events.length > 50) events.shift();
    var oldest = S.points.length ? S.points[0].t : 0;
    S.roleMarks = S.roleMarks.filter(function (m) { return m.t >= oldest; });
    renderEvents();
  }

  // ---- the stream ----------------------------------------------------------------------------
  function onStatus(s) {
    S.status = s;
    renderHeader();
    renderPair();
    renderListeners();
    renderUpstreams();
    renderTotals();
  }

  function onHistory(h) {
    S.points = h.points.slice(-MAX_POINTS);
    events = [];
    S.roleMarks = [];
    addEvents(h.events);
    refreshCharts();
    if (S.status) { renderListeners(); renderTotals(); }
  }

  function onTick(t) {
    t.points.forEach(function (p) { S.points.push(p); });
    if (S.points.length > MAX_POINTS) S.points.splice(0, S.points.length - MAX_POINTS);
    if (t.events.length) addEvents(t.events);
    refreshCharts();
  }

  var retryMs = 1000;

  function connect() {
    var conn = $('conn');
    var es = new EventSource('api/events');
    es.addEventListener('open', function () { retryMs = 1000; setText(conn, 'live'); conn.setAttribute('data-state', 'live'); });
    es.addEventListener('error', function () {
      setText(conn, 'reconnecting');
      conn.setAttribute('data-state', 'lost');
      // A non-200 answer (503: all stream slots taken) ends an EventSource for good: the
      // browser retries only dropped streams. Open a new one later, backing off to 10 s.
      if (es.readyState === EventSource.CLOSED) {
        setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 10000);
      }
    });
    es.addEventListener('status', function (m) { onStatus(JSON.parse(m.data)); });
    es.addEventListener('history', function (m) { onHistory(JSON.parse(m.data)); });
    es.addEventListener('tick', function (m) { onTick(JSON.parse(m.data)); });
  }

  T.onStatus = onStatus;

  connect();
})();
