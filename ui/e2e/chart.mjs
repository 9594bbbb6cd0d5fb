// Reads the latency chart as one line ("Voice to voice: 2.49 s | Transcript 1.21 s | ..."):
// the tests print it, so a run's log holds the same figures the window showed.

/** The chart of the last turn, or "" when it has none. */
export async function latencyChart(app) {
  return app.execute(`
    const chart = document.getElementById("waterfall");
    const head = chart.querySelector(".v2v")?.textContent ?? "";
    const rows = [...chart.querySelectorAll(".bar-row")].map(
      (row) => row.querySelector(".bar-label").textContent + " " + row.querySelector(".bar-value").textContent,
    );
    return [head, ...rows].filter(Boolean).join(" | ");
  `);
}
