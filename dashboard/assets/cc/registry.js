/* The layer registry (spine/layers.py), read from the JSON the server embeds in every page.
 *
 * Every colour and every code word the renderers use comes from here: this code has none of its
 * own, so the map cannot disagree with what producers publish (tests/test_layers.py checks it).
 */
import { t } from './i18n.js';

/* Labels in the registry are message ids; the functions below return them in the page's language. */
const node = document.getElementById('cc-layers');
export const reg = node ? JSON.parse(node.textContent) : { layers: {}, severities: [], sensor_levels: [],
  air_grades: [], camera_types: {}, camera_status: {}, ui: {}, chart_series: [], air_guides: {},
  thresholds: {} };

export const LAYERS = Object.keys(reg.layers);
export const ui = reg.ui;
export const chartSeries = reg.chart_series;
/* Thresholds applied to data (camera activity window, cone reach, bus lateness) and the air grade
 * edges drawn as chart guides: numbers too have one home, spine/layers.py. */
export const thresholds = reg.thresholds;
export const airGuides = reg.air_guides;

function byCode(list) {
  const out = Object.create(null);
  list.forEach((e, i) => { out[e.code] = Object.assign({ rank: i }, e); });
  return out;
}

export const severity = byCode(reg.severities);
export const sensorLevel = byCode(reg.sensor_levels);
export const airGrade = byCode(reg.air_grades);
export const airGradeOrder = reg.air_grades.map((g) => g.code);

const own = (obj, key) => (typeof key === 'string' && Object.prototype.hasOwnProperty.call(obj, key));

export function layerColor(layer) { return own(reg.layers, layer) ? reg.layers[layer].color : ui.unknown; }
export function severityColor(code) { return own(severity, code) ? severity[code].color : ui.unknown; }
export function severityLabel(code) { return own(severity, code) ? t(severity[code].label) : String(code); }
export function isAlarmSeverity(code) { return own(severity, code) && severity[code].alarm; }
export function sensorLevelColor(code) { return own(sensorLevel, code) ? sensorLevel[code].color : null; }
export function isAlarmLevel(code) { return own(sensorLevel, code) && sensorLevel[code].alarm; }
export function airGradeColor(code) { return own(airGrade, code) ? airGrade[code].color : null; }
export function cameraTypeColor(code) { return own(reg.camera_types, code) ? reg.camera_types[code] : null; }
export function cameraStatusColor(code) { return own(reg.camera_status, code) ? reg.camera_status[code] : null; }
export function popupFields(layer) {
  return own(reg.layers, layer) ? reg.layers[layer].popup.map((f) => Object.assign({}, f, { label: t(f.label) })) : [];
}
/* A code the registry names (camera type, status) as its word; null for any other value. */
export function codeLabel(layer, key, v) {
  const byKey = own(reg.code_labels || {}, layer) ? reg.code_labels[layer] : null;
  const words = byKey && own(byKey, key) ? byKey[key] : null;
  return words && own(words, v) ? t(words[v]) : null;
}
export function layerLabel(layer) { return own(reg.layers, layer) ? t(reg.layers[layer].label) : String(layer); }

/* `좋음 Good` in English; just `좋음` where the translation is the grade's own name. */
export function gradeLabel(code) {
  if (!own(airGrade, code)) { return String(code); }
  const text = t(airGrade[code].label);
  return text === code ? code : code + ' ' + text;
}

/* A camera that saw something within the registry's activity window (badges, the KPI). */
export function cameraActive(p, now) {
  return !!(p && p.last_activity) && (now - p.last_activity < thresholds.camera_active_ms);
}

/* A code shown as its label (level, grade, severity formats of the popup). */
export function labelOf(format, code) {
  const table = format === 'level' ? sensorLevel : format === 'grade' ? airGrade : format === 'severity' ? severity : null;
  if (table && own(table, code)) {
    return format === 'grade' ? gradeLabel(code) : t(table[code].label);
  }
  return String(code);
}
