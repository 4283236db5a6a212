// The bureau console: charts from the series inlined in the page, small conveniences.
// Every page and action works without this file (forms post; htmx only swaps parts in place).
(function () {
  "use strict";

  function data(name) {
    var el = document.querySelector('script[data-chart-data="' + name + '"]');
    return el ? JSON.parse(el.textContent) : null;
  }
  var palette = ["#0b5cad", "#1a6b34", "#b3261e", "#8a5300", "#6b3fa0", "#4a5460"];
  var base = { color: palette, textStyle: { fontFamily: "Noto Sans CJK SC, PingFang SC, Microsoft YaHei, sans-serif" },
    grid: { left: 56, right: 24, top: 48, bottom: 32 }, tooltip: { trigger: "axis" }, legend: { top: 0 } };
  function merge(a, b) { var o = {}; for (var k in a) o[k] = a[k]; for (var j in b) o[j] = b[j]; return o; }

  var builders = {
    fund_balance: function (d) {
      var names = Object.keys(d.series);
      return merge(base, {
        xAxis: { type: "category", data: d.months }, yAxis: { type: "value" },
        series: names.map(function (n, i) {
          return i === 0
            ? { name: n, type: "line", data: d.series[n], smooth: false, symbolSize: 6, areaStyle: { opacity: 0.08 } }
            : { name: n, type: "bar", data: d.series[n], barMaxWidth: 14 };
        })
      });
    },
    disbursements_by_month: function (d) {
      return merge(base, {
        xAxis: { type: "category", data: d.months }, yAxis: { type: "value" },
        series: Object.keys(d.series).map(function (n) { return { name: n, type: "bar", data: d.series[n], barMaxWidth: 18 }; })
      });
    },
    npl_by_bank: function (d) {
      return merge(base, {
        legend: { show: false },
        xAxis: { type: "category", data: d.banks },
        yAxis: { type: "value", axisLabel: { formatter: "{value}%" }, max: function (v) { return Math.ceil(Math.max(v.max, Number(d.suspend) * 1.15)); } },
        series: [{ type: "bar", data: d.ratios, barMaxWidth: 36,
          markLine: { symbol: "none", silent: true, data: [
            { yAxis: d.warning, name: d.labels.warning, lineStyle: { color: "#8a5300" }, label: { position: "insideEndTop", formatter: d.labels.warning + " {c}%" } },
            { yAxis: d.suspend, name: d.labels.suspend, lineStyle: { color: "#b3261e" }, label: { position: "insideEndTop", formatter: d.labels.suspend + " {c}%" } }
          ] } }]
      });
    },
    claims_by_state: function (d) {
      return merge(base, {
        tooltip: { trigger: "item" }, legend: { show: false }, grid: { left: 150, right: 32, top: 16, bottom: 24 },
        xAxis: { type: "value", minInterval: 1 }, yAxis: { type: "category", data: d.states, inverse: true },
        series: [{ type: "bar", data: d.counts, barMaxWidth: 28, label: { show: true, position: "right" } }]
      });
    },
    // the stress test: the 5th–95th percentile band of the available balance (a stacked area: the 5th
    // percentile, then the width of the band on top), the median, and the zero line where the fund is dry
    balance_fan: function (d) {
      var width = d.p95.map(function (v, i) { return (Number(v) - Number(d.p05[i])).toFixed(2); });
      return merge(base, {
        legend: { top: 0, data: [d.labels.p50, d.labels.band] },
        tooltip: { trigger: "axis", formatter: function (items) {
          var i = items[0].dataIndex;
          return d.months[i] + "<br>" + d.labels.p95 + " " + d.p95[i] + "<br>" + d.labels.p50 + " " + d.p50[i] +
            "<br>" + d.labels.p05 + " " + d.p05[i];
        } },
        xAxis: { type: "category", data: d.months, boundaryGap: false },
        yAxis: { type: "value", scale: true },
        series: [
          { name: d.labels.p05, type: "line", data: d.p05, stack: "fan", symbol: "none", lineStyle: { opacity: 0 } },
          { name: d.labels.band, type: "line", data: width, stack: "fan", symbol: "none", lineStyle: { opacity: 0 },
            itemStyle: { color: "rgba(11, 92, 173, 0.35)" }, areaStyle: { color: "rgba(11, 92, 173, 0.22)" } },
          { name: d.labels.p50, type: "line", data: d.p50, symbolSize: 5, lineStyle: { width: 2, color: "#0b5cad" },
            itemStyle: { color: "#0b5cad" },
            markLine: { symbol: "none", silent: true, data: [{ yAxis: 0, lineStyle: { color: "#b3261e" },
              label: { formatter: d.labels.empty, position: "insideEndTop" } }] } }
        ]
      });
    },
    loss_histogram: function (d) {
      return merge(base, {
        legend: { show: false }, grid: { left: 56, right: 24, top: 24, bottom: 64 },
        xAxis: { type: "category", data: d.bins, axisLabel: { rotate: 40, fontSize: 10 } },
        yAxis: { type: "value", name: d.labels.probability },
        series: [{ type: "bar", barCategoryGap: "8%", name: d.labels.probability,
          data: d.probabilities.map(function (p, i) {
            return { value: p, itemStyle: { color: d.exhausting[i] ? "#b3261e" : "#0b5cad" } };
          }) }]
      });
    },
    // each bank's rating over twelve months: 1 (least risk) at the top
    rating_trend: function (d) {
      return merge(base, {
        xAxis: { type: "category", data: d.months },
        yAxis: { type: "value", min: 1, max: 5, interval: 1, inverse: true },
        series: Object.keys(d.series).map(function (n) {
          return { name: n, type: "line", data: d.series[n], connectNulls: false, symbolSize: 6 };
        })
      });
    }
  };

  function drawCharts() {
    if (!window.echarts) return;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart"), d = data(name), build = builders[name];
      if (!d || !build) return;
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(build(d));
      el.setAttribute("data-rendered", "true");
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    // a select marked data-autosubmit sends its form when changed (the button stays for keyboards)
    document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
      s.addEventListener("change", function () { s.form.requestSubmit ? s.form.requestSubmit() : s.form.submit(); });
    });
  });
  // a confirm prompt on buttons marked data-confirm
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("[data-confirm]");
    if (b && !window.confirm(b.getAttribute("data-confirm"))) ev.preventDefault();
  }, true);
})();
// htmx: a refused action (4xx) comes back as the page with its error shown: swap it in like a success
document.addEventListener("htmx:beforeSwap", function (ev) {
  var status = ev.detail.xhr.status;
  if (status >= 400 && status < 500) { ev.detail.shouldSwap = true; ev.detail.isError = false; }
});
