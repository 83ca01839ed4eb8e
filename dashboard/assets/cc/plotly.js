/* Plotly for the page's charts: the plotly.js bundle the web server already serves (Dash registers
 * the plotly package's plotly.min.js; no CDN, script-src 'self' holds), added as a classic script the
 * first time a chart is drawn, so pages without charts never download its ~5 MB. The dark theme of
 * the popups' trend charts (registry ui colours) is the base layout. */
import { ui } from './registry.js';

const SRC = '/_dash-component-suites/plotly/package_data/plotly.min.js';
let loading = null;

export function loadPlotly() {
  if (window.Plotly) { return Promise.resolve(window.Plotly); }
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = SRC;
      s.async = true;
      s.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error('no Plotly')));
      s.onerror = () => { loading = null; reject(new Error('plotly.js not loaded')); };
      document.head.append(s);
    });
  }
  return loading;
}

/* KST wall time for a date axis: Plotly draws a number as UTC, so the 9 h are added here; the real
 * epoch ms travel in customdata (a click opens replay at that moment). */
export const KST_MS = 9 * 3600 * 1000;
export function kstX(ms) { return new Date(ms + KST_MS).toISOString().slice(0, 19).replace('T', ' '); }

export function darkLayout(extra) {
  const axis = { gridcolor: ui.chart_guide, zerolinecolor: ui.chart_guide, linecolor: ui.chart_guide,
    tickfont: { color: ui.chart_text }, color: ui.chart_text };
  return Object.assign({
    paper_bgcolor: 'transparent', plot_bgcolor: 'transparent',
    font: { color: ui.chart_text, size: 11 },
    margin: { l: 44, r: 8, t: 24, b: 28 },
    xaxis: Object.assign({ type: 'date' }, axis),
    yaxis: Object.assign({ rangemode: 'tozero' }, axis),
    // Above the plot, inside the chart's box (below it, it would spill over the next title).
    legend: { orientation: 'h', x: 0, y: 1, yanchor: 'bottom', font: { color: ui.chart_text, size: 10 } },
    hovermode: 'closest',
  }, extra || {});
}

export const PLOT_CONFIG = { displaylogo: false,
  modeBarButtonsToRemove: ['sendDataToCloud', 'lasso2d', 'select2d'] };
