/* listener's dashboard: draws the charts (uPlot) from the JSON endpoints named by data-src.
   No inline script anywhere (the Content-Security-Policy allows only these files): every chart
   is a <div data-chart="hourly|net|incident" data-src="/api/..."> filled in here. */
(function () {
  "use strict";
  var COLORS = {negative: "#d64545", neutral: "#a0aab4", positive: "#2f9e44"};
  var MARKS = {incident: "rgba(214, 69, 69, 0.15)", outage: "rgba(90, 90, 90, 0.15)"};

  function zone() { return document.body.getAttribute("data-zone") || "UTC"; }
  function tzDate(ts) { return uPlot.tzDate(new Date(ts * 1e3), zone()); }
  function isoHour(ts) { return new Date(ts * 1e3).toISOString().slice(0, 19) + "Z"; }
  // The time axis and legend on a 24-hour clock, day before month (uPlot's default is US style):
  // [tick step (s), label, label where the year changes, -, where the month changes, -, where the day changes, -, mode]
  var TIME_AXIS = {values: [
    [86400 * 365, "{YYYY}", null, null, null, null, null, null, 1],
    [86400 * 28, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
    [86400, "{D} {MMM}", "\n{YYYY}", null, null, null, null, null, 1],
    [3600, "{HH}:{mm}", "\n{D} {MMM} {YYYY}", null, "\n{D} {MMM}", null, null, null, 1],
    [60, "{HH}:{mm}", "\n{D} {MMM} {YYYY}", null, "\n{D} {MMM}", null, null, null, 1]]};
  var TIME_SERIES = {value: "{WWW} {D} {MMM} {HH}:{mm}"};
  var DAY_SERIES = {value: "{WWW} {D} {MMM}"};

  function sum(xs) { return xs.reduce(function (a, b) { return a + (b || 0); }, 0); }

  function markersHook(markers) {
    return function (u) {
      var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
      ctx.save();
      markers.forEach(function (m) {
        var x0 = Math.max(u.valToPos(m.start, "x", true), u.bbox.left);
        var x1 = Math.min(u.valToPos(m.end, "x", true), u.bbox.left + u.bbox.width);
        if (x1 <= x0) { x1 = x0 + 2; }
        ctx.fillStyle = MARKS[m.kind] || MARKS.outage;
        ctx.fillRect(x0, top, x1 - x0, height);
        ctx.fillStyle = "#333";
        ctx.font = Math.round(11 * devicePixelRatio) + "px sans-serif";
        ctx.fillText(m.label, x0 + 3, top + 12 * devicePixelRatio);
      });
      ctx.restore();
    };
  }

  function hourly(el, d) {
    var neg = d.negative, neu = d.neutral, pos = d.positive;
    var negNeu = neg.map(function (v, i) { return v + neu[i]; });
    var all = negNeu.map(function (v, i) { return v + pos[i]; });
    var raw = [null, pos, neu, neg];
    var bars = uPlot.paths.bars({size: [0.9, 40]});
    function series(label, color, si) {
      return {label: label, fill: color, stroke: color, paths: bars, points: {show: false},
              value: function (u, v, s, idx) { return idx == null ? "-" : raw[si][idx]; }};
    }
    var opts = {width: el.clientWidth || 900, height: 260, tzDate: tzDate,
                series: [TIME_SERIES, series("positive", COLORS.positive, 1), series("neutral", COLORS.neutral, 2),
                         series("negative", COLORS.negative, 3)],
                axes: [TIME_AXIS, {label: "mentions / h"}], scales: {y: {range: function (u, lo, hi) { return [0, Math.max(hi, 1)]; }}},
                hooks: {draw: [markersHook(d.markers)]}};
    var plot = new uPlot(opts, [d.hours, all, negNeu, neg], el);
    var base = el.getAttribute("data-mentions");
    if (base) {
      plot.over.addEventListener("click", function () {
        var idx = plot.cursor.idx;
        if (idx == null) { return; }
        var t = d.hours[idx];
        window.location.href = base + "&start=" + encodeURIComponent(isoHour(t)) + "&end=" + encodeURIComponent(isoHour(t + 3600));
      });
    }
    el.setAttribute("data-total", String(sum(all)));
    ["negative", "neutral", "positive"].forEach(function (s) { el.setAttribute("data-" + s, String(sum(d[s]))); });
    return plot;
  }

  function net(el, d) {
    var opts = {width: el.clientWidth || 900, height: 160, tzDate: tzDate,
                series: [DAY_SERIES, {label: "net sentiment", stroke: "#1c7ed6", width: 2, spanGaps: false, points: {show: true}}],
                scales: {y: {range: [-1, 1]}}, axes: [TIME_AXIS, {label: "net"}]};
    el.setAttribute("data-net", JSON.stringify(d.net));
    return new uPlot(opts, [d.days, d.net], el);
  }

  function incident(el, d) {
    var marks = [{kind: "incident", start: d.opened, end: d.closed || d.hours[d.hours.length - 1] + 3600, label: "incident"}];
    var opts = {width: el.clientWidth || 900, height: 260, tzDate: tzDate,
                series: [TIME_SERIES, {label: d.label, stroke: COLORS.negative, width: 2, fill: "rgba(214, 69, 69, 0.1)"},
                         {label: "usual", stroke: "#555", dash: [6, 4], width: 1.5}],
                axes: [TIME_AXIS, {label: "mentions / h"}], hooks: {draw: [markersHook(marks)]}};
    el.setAttribute("data-total", String(sum(d.mentions)));
    return new uPlot(opts, [d.hours, d.mentions, d.usual], el);
  }

  var DRAW = {hourly: hourly, net: net, incident: incident};

  function load(el) {
    var kind = el.getAttribute("data-chart");
    fetch(el.getAttribute("data-src"), {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error(r.status + " " + r.statusText); } return r.json(); })
      .then(function (d) {
        el.textContent = "";
        DRAW[kind](el, d);
        el.setAttribute("data-ready", "true");
      })
      .catch(function (e) { el.textContent = "chart unavailable: " + e.message; el.setAttribute("data-ready", "error"); });
  }

  function loadAll(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("[data-chart]"), load);
  }

  document.addEventListener("DOMContentLoaded", function () { loadAll(document); });
  document.addEventListener("listener:reload-charts", function () { loadAll(document); });
}());
