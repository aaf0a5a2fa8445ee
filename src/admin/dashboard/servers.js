// tandem dashboard, part 3 of 4: one card per upstream, its servers' table and controls. A
// control asks for the admin token on 401 and keeps it in this tab's sessionStorage.
'use strict';
(function () {
  var T = window.tandem, S = T.state;
  var $ = T.$, el = T.el, setText = T.setText, sum = T.sum, last = T.last, fmtRate = T.fmtRate, fmtMs = T.fmtMs;
  var makeChart = T.makeChart;
  var TOKEN_KEY = 'tandem.adminToken';
  var upstreamCards = new Map();
  var LABELS = { checks: 'checks', weight: 'weight', ejected: 'ejected', active: 'active', share: 'share', resp: 'response', requests: 'requests' };

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
    var table = el('table', { class: 'servers' });
    var head = el('tr', { class: 'head' });
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
        // On a phone each row becomes a card and this names the value (see app.css).
        if (LABELS[name]) td.setAttribute('data-label', LABELS[name]);
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
      makeChart(grid, { key: 'upstream:' + u.name + ':response', title: 'Response time per server', fmt: fmtMs, hold: 5, series: serverSeries(function (x) { return x.responseMs; }) }),
    ];
    made.forEach(function (c) { T.observeChart(c); });
    card = { key: key, section: section, sub: sub, rows: rows, note: note };
    upstreamCards.set(u.name, card);
    return card;
  }

  function renderUpstreams() {
    var seen = new Set();
    var recent = last(10);
    S.status.upstreams.forEach(function (u) {
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
        c.buttons.weight.disabled = false;
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
    return fetch('api/status', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (s) { T.onStatus(s); }, function () {});
  }

  T.renderUpstreams = renderUpstreams;
})();
