/* Panels around the map, filled from the store once a second: live status, KPIs, drone telemetry,
 * per-layer counts and ages, the clock, feed health (/api/health every 5 s) and layer toggles. */
import { cc } from './state.js';
import { el, setAll, num, timeKst, ageText } from './dom.js';
import { t } from './i18n.js';
import { LAYERS, isAlarmLevel, airGradeOrder, cameraActive, thresholds } from './registry.js';

const STALE_MS = 6000;
const HOUR_MS = 3600000;

const STATUS_TEXT = { live: () => t('LIVE'), stale: () => t('STALE'), reconnecting: () => t('RECONNECTING'),
  ended: () => t('SESSION ENDED') };
/* Feed health states (spine/health.py) as words; an unknown state is shown as its code. */
const HEALTH_TEXT = { starting: () => t('STARTING'), ok: () => t('OK'), stale: () => t('STALE'),
  down: () => t('DOWN'), error: () => t('ERROR') };

function statusNow() {
  if (cc.sessionEnded) { return 'ended'; }
  if (!cc.connected) { return 'reconnecting'; }
  if (!cc.redisUp || Date.now() - cc.lastFrameAt > STALE_MS) { return 'stale'; }
  return 'live';
}

export function updateStatus() {
  const node = document.getElementById('cc-live-status');
  if (!node) { return; }
  const s = statusNow();
  if (node.dataset.state !== s) {
    node.dataset.state = s;
    node.className = 'cc-status cc-status-' + s;
    node.textContent = STATUS_TEXT[s]();
  }
}

function kpis() {
  const now = Date.now();
  let late = 0, active = 0, alarm = 0, worst = -1, recent = 0;
  cc.entities.bus.forEach((u) => { if (num(u.props.delay_s, 0) > thresholds.bus_late_s) { late += 1; } });
  cc.entities.camera.forEach((u) => { if (cameraActive(u.props, now)) { active += 1; } });
  cc.entities.sensor.forEach((u) => { if (isAlarmLevel(u.props.level)) { alarm += 1; } });
  cc.entities.air.forEach((u) => { worst = Math.max(worst, airGradeOrder.indexOf(u.props.grade)); });
  cc.events.forEach((e) => { if (now - e.ts < HOUR_MS) { recent += 1; } });
  return { bus: cc.entities.bus.size, bus_late: late, camera_active: active, sensor_alarm: alarm,
    air_worst: worst >= 0 ? airGradeOrder[worst] : '-', events: recent };
}

function telemetryText(d) {
  if (!d) { return t('no telemetry'); }
  const p = d.props || {}, age = Math.round((Date.now() - d.ts) / 1000);
  return t('ALT {alt} m  HDG {hdg}\u00b0  {speed} m/s  BAT {bat} %', { alt: Math.round(num(p.alt_m, 0)),
    hdg: Math.round(num(p.heading, 0)), speed: num(p.speed_ms, 0).toFixed(1),
    bat: Math.round(num(p.battery_pct, 0)) }) + '  ' + String(p.mode || '') +
    (age > 5 ? '  ' + t('({n} s old)', { n: age }) : '');
}

function setText(node, text) { if (node.textContent !== text) { node.textContent = text; } }

export function renderPanels() {
  updateStatus();
  setAll('[data-cc-telemetry]', (n) => setText(n, telemetryText(cc.entities.drone.get(n.dataset.ccTelemetry))));
  const k = kpis();
  setAll('[data-cc-kpi]', (n) => setText(n, String(k[n.dataset.ccKpi])));
  setAll('[data-cc-count]', (n) => { const m = cc.entities[n.dataset.ccCount]; setText(n, m ? String(m.size) : '-'); });
  setAll('[data-cc-age]', (n) => setText(n, ageText(cc.lastLayerTs[n.dataset.ccAge])));
  setAll('[data-cc-clock]', (n) => setText(n, timeKst(Date.now()) + ' ' + t('KST')));
}

function markStaleLayers(h) {
  LAYERS.forEach((layer) => {
    const stale = !!(h['layer:' + layer] && h['layer:' + layer].stale);
    setAll('[data-cc-legend="' + layer + '"], [data-cc-age="' + layer + '"]',
      (n) => n.classList.toggle('cc-layer-stale', stale));
  });
}

function healthRow(name, f) {
  const age = typeof f.age_s !== 'number' ? '-' : (f.age_s < 60 ? t('{n} s', { n: Math.round(f.age_s) })
    : t('{n} min', { n: Math.round(f.age_s / 60) }));
  const state = String(f.state);
  const word = Object.prototype.hasOwnProperty.call(HEALTH_TEXT, state) ? HEALTH_TEXT[state]() : state.toUpperCase();
  const tr = el('tr', null, [el('td', { text: name }), el('td', { text: word, 'data-cc-state': state }),
    el('td', { text: age + ' / ' + t('{n} s', { n: f.contract_s }) }), el('td', { text: f.msgs_per_s }),
    el('td', { text: f.rejects })]);
  tr.className = 'cc-health-' + (state === 'error' ? 'down' : state.replace(/[^a-z]/g, '')); tr.title = f.error || '';
  return tr;
}

function healthMessage(tbody, text) { tbody.replaceChildren(el('tr', null, [el('td', { colspan: 5, text })])); }

export function renderHealth() {
  if (location.pathname === '/login' || cc.sessionEnded) { return; }
  const table = document.getElementById('cc-health');
  fetch('/api/health', { credentials: 'same-origin', cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
    .then((h) => {
      markStaleLayers(h);
      if (!table) { return; }
      // Feeds only: `layer:*` marks stale layers, `_*` are not feeds (the gateway's own report).
      const names = Object.keys(h).filter((k) => k.indexOf('layer:') !== 0 && k[0] !== '_' && h[k]
        && typeof h[k] === 'object' && 'state' in h[k]).sort();
      const tbody = table.querySelector('tbody');
      if (names.length) { tbody.replaceChildren(...names.map((k) => healthRow(k, h[k]))); } else { healthMessage(tbody, t('no feed reports health')); }
    })
    .catch(() => { if (table) { healthMessage(table.querySelector('tbody'), t('health unavailable')); } });
}

/* Layer toggles for the tablet (layouts/commander.py). */
export function onToggleClick(ev) {
  const btn = ev.target.closest && ev.target.closest('[data-cc-toggle]');
  if (!btn || !cc.map) { return false; }
  const g = cc.groups[btn.dataset.ccToggle];
  if (!g) { return true; }
  const on = cc.map.hasLayer(g);
  if (on) { cc.map.removeLayer(g); } else { cc.map.addLayer(g); }
  btn.classList.toggle('cc-on', !on);
  btn.setAttribute('aria-pressed', String(!on));
  return true;
}
