// tandem dashboard, part 2 of 4: uPlot charts over the shared points, with role changes drawn
// as dashed vertical lines on every chart.
'use strict';
(function () {
  var T = window.tandem, S = T.state;
  var el = T.el, setText = T.setText, cssVar = T.cssVar, sum = T.sum, fmtMs = T.fmtMs, clock = T.clock;
  var charts = [];

  // Vertical dashed lines at role changes, drawn on every chart.
  var roleMarksPlugin = {
    hooks: {
      draw: [function (u) {
        if (S.roleMarks.length === 0) return;
        var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
        ctx.save();
        ctx.strokeStyle = cssVar('--c5');
        ctx.fillStyle = cssVar('--c5');
        ctx.lineWidth = 2 * devicePixelRatio;
        ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
        ctx.font = '600 ' + Math.round(11 * devicePixelRatio) + 'px system-ui, sans-serif';
        S.roleMarks.forEach(function (m) {
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
        return { label: s.label, stroke: cssVar(s.color), width: 2, points: { show: false } };
      })),
      legend: { show: false },
      cursor: { points: { size: 6 }, drag: { x: false, y: false } },
      plugins: [roleMarksPlugin],
    };
    chart.u = new uPlot(opts, chartData(spec), chart.plot);
  }

  // A latency exists only for seconds that answered something: at a few requests a second the
  // line would break up. Short gaps (up to `spec.hold` seconds) keep the last value; longer
  // idle stretches stay gaps rather than a line drawn across them.
  function hold(values, n) {
    var lastValue = null, age = 0;
    return values.map(function (v) {
      if (v !== null && v !== undefined) { lastValue = v; age = 0; return v; }
      age++;
      return lastValue !== null && age <= n ? lastValue : null;
    });
  }

  function chartData(spec) {
    var xs = S.points.map(function (p) { return p.t; });
    return [xs].concat(spec.series.map(function (s) {
      var ys = S.points.map(s.value);
      return spec.hold ? hold(ys, spec.hold) : ys;
    }));
  }

  function refreshCharts() {
    // A card removed or rebuilt (a reload changed the servers) leaves its charts detached: free them.
    for (var i = charts.length - 1; i >= 0; i--) {
      var gone = charts[i];
      if (gone.box.isConnected) continue;
      resize.unobserve(gone.plot);
      if (gone.u) gone.u.destroy();
      charts.splice(i, 1);
    }
    charts.forEach(function (c) {
      var data = chartData(c.spec);
      c.u.setData(data);
      var lastIndex = data[0].length - 1;
      // For tests and for anyone inspecting the page: the newest point's time and total.
      c.box.setAttribute('data-points', String(lastIndex + 1));
      c.box.setAttribute('data-marks', String(S.roleMarks.length));
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

  T.makeChart = makeChart;
  T.refreshCharts = refreshCharts;
  T.observeChart = function (c) { resize.observe(c.plot); };
})();
