// tandem dashboard, part 1 of 4: shared state, DOM and number formatting. Plain browser scripts
// loaded in order (format, charts, servers, app) share the one `window.tandem` object; no build
// step. Every text from the config goes in through textContent, never innerHTML.
'use strict';
(function () {
  var T = window.tandem = {};
  // What the stream has delivered: the status snapshot, one-second points, role-change marks.
  var S = T.state = { status: null, points: [], roleMarks: [] };

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
  function last(n) { return S.points.slice(Math.max(0, S.points.length - n)); }


  T.$ = $;
  T.el = el;
  T.setText = setText;
  T.cssVar = cssVar;
  T.fmtRate = fmtRate;
  T.fmtMs = fmtMs;
  T.fmtBytes = fmtBytes;
  T.fmtPct = fmtPct;
  T.fmtAge = fmtAge;
  T.clock = clock;
  T.fmtTime = fmtTime;
  T.sum = sum;
  T.last = last;
})();
