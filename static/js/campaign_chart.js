// Campaign page: successful redemptions per day, from the canvas's data-chart JSON.
document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("redemptions-chart");
  if (!canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(canvas.dataset.chart);
  new Chart(canvas, {
    type: "bar",
    data: { labels: data.labels, datasets: [{ label: "Redemptions", data: data.values, backgroundColor: "#1565c0", maxBarThickness: 48 }] },
    options: { animation: false, plugins: { legend: { display: false } },
               scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
});
