// Charts (Chart.js from static/vendor): every canvas[data-chart] carries its data as JSON (credits, dashboard).
function drawCharts(root) {
  root.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    if (canvas.chart) return;
    const spec = JSON.parse(canvas.dataset.chart);
    canvas.chart = new Chart(canvas, {
      type: spec.type || "bar",
      data: { labels: spec.labels, datasets: spec.datasets },
      options: { responsive: true, animation: false, scales: { y: { beginAtZero: true } } },
    });
  });
}
document.addEventListener("DOMContentLoaded", () => drawCharts(document));
document.addEventListener("htmx:afterSwap", (event) => drawCharts(event.target));
