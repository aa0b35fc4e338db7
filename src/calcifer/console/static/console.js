// The console's little JavaScript: charts from JSON data blocks, copy buttons, confirmations.
"use strict";

function loadScript(src) {
  return new Promise(function (resolve, reject) {
    var script = document.createElement("script");
    script.src = src;
    script.onload = resolve;
    script.onerror = reject;
    document.head.appendChild(script);
  });
}

function drawCharts() {
  var canvases = document.querySelectorAll("canvas[id$='-chart']");
  if (!canvases.length) return;
  loadScript("/ui/static/chart.umd.min.js").then(function () {
    canvases.forEach(function (canvas) {
      var data = JSON.parse(document.getElementById(canvas.id + "-data").textContent);
      var datasets = data.datasets || [{ label: "USD", data: data.costs.map(Number), backgroundColor: "#c2410c" }];
      new window.Chart(canvas, {
        type: "bar",
        data: { labels: data.labels, datasets: datasets },
        options: {
          animation: false,
          maintainAspectRatio: false,
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
          plugins: { legend: { display: datasets.length > 1 } }
        }
      });
    });
  });
}

function copyButtons() {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = document.getElementById(button.dataset.copy).textContent.trim();
      navigator.clipboard.writeText(text).then(function () {
        button.textContent = "Copied";
      });
    });
  });
}

function confirmations() {
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  drawCharts();
  copyButtons();
  confirmations();
});
