// Charts of the analytics page. Data comes from <script type="application/json"> blocks
// (json_script); series differ by dash style and point shape, bars carry their numbers.
(function () {
  "use strict";

  function stripes(color) {
    var c = document.createElement("canvas");
    c.width = c.height = 8;
    var x = c.getContext("2d");
    x.fillStyle = color; x.fillRect(0, 0, 8, 8);
    x.strokeStyle = "rgba(0,0,0,.45)"; x.lineWidth = 2;
    x.beginPath(); x.moveTo(0, 8); x.lineTo(8, 0); x.stroke();
    return x.createPattern(c, "repeat");
  }

  // Writes each bar's value at its end, so the numbers are read without the colours.
  var barLabels = {
    id: "barLabels",
    afterDatasetsDraw: function (chart) {
      if (chart.config.type !== "bar") return;
      var ctx = chart.ctx;
      ctx.save();
      ctx.font = "12px system-ui, sans-serif";
      ctx.fillStyle = "#263238";
      chart.data.datasets.forEach(function (ds, i) {
        chart.getDatasetMeta(i).data.forEach(function (bar, j) {
          var value = ds.data[j];
          if (value === null || value === undefined) return;
          var horizontal = chart.options.indexAxis === "y";
          ctx.textAlign = horizontal ? "left" : "center";
          ctx.textBaseline = horizontal ? "middle" : "bottom";
          ctx.fillText(String(value), horizontal ? bar.x + 4 : bar.x, horizontal ? bar.y : bar.y - 2);
        });
      });
      ctx.restore();
    }
  };

  function build(canvas) {
    if (canvas.dataset.ready || !window.Chart) return;
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) return;
    var spec = JSON.parse(source.textContent);
    spec.datasets.forEach(function (ds) {
      if (ds.pattern === "stripes") ds.backgroundColor = stripes(ds.backgroundColor);
      ds.borderWidth = spec.type === "line" ? 2 : 1;
      if (spec.type === "line") { ds.pointRadius = 3; ds.tension = 0.2; }
    });
    var horizontal = spec.type === "bar" && spec.labels.length > 4;
    canvas.dataset.ready = "1";
    new window.Chart(canvas, {
      type: spec.type,
      data: {labels: spec.labels, datasets: spec.datasets},
      plugins: [barLabels],
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        indexAxis: horizontal ? "y" : "x",
        interaction: {mode: "index", intersect: false},
        plugins: {legend: {labels: {usePointStyle: true}}},
        // grace: room past the longest bar for the number written at its end
        scales: {y: {beginAtZero: true, grace: "8%"}, x: {beginAtZero: true, grace: "8%"}}
      }
    });
  }

  function buildAll() {
    document.querySelectorAll("canvas[data-chart]").forEach(build);
  }

  document.addEventListener("DOMContentLoaded", buildAll);
  document.addEventListener("htmx:afterSettle", buildAll);
})();
