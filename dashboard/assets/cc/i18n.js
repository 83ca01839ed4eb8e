/* The page's language: the gettext catalogue the server embeds as JSON (dashboard/i18n.py,
 * `<script type="application/json" id="cc-i18n">`, data for the CSP, not code), and the one place
 * times are formatted: always Korea time (Asia/Seoul), whatever zone the browser runs in.
 *
 * t(key, params): the message in the page's language, `{name}` placeholders filled from params as
 * text. Keys are the English source strings (msgids); a key the catalogue lacks is shown as is.
 * Texts are only ever placed with textContent (dom.js el), never as markup.
 */
const node = document.getElementById('cc-i18n');
const data = (() => {
  try { return node ? JSON.parse(node.textContent) : {}; } catch (e) { return {}; }
})();

export const lang = data.lang === 'en' ? 'en' : 'ko';
const messages = (data.messages && typeof data.messages === 'object') ? data.messages : Object.create(null);
const own = (obj, key) => typeof key === 'string' && Object.prototype.hasOwnProperty.call(obj, key);

/* Params whose values are vocabulary words (object classes, directions), shown translated. */
const WORD_PARAMS = new Set(['cls', 'direction', 'what']);
const MAX_PARAM = 200;
const numFmt = new Intl.NumberFormat(lang === 'ko' ? 'ko-KR' : 'en-GB', { maximumFractionDigits: 2 });

/* Is `key` a message of the catalogue (an event's `msg` is shown only if it is)? */
export function known(key) { return own(messages, key); }

function param(name, v) {
  if (typeof v === 'number') { return isFinite(v) ? numFmt.format(v) : '-'; }
  if (typeof v === 'boolean') { return v ? t('yes') : t('no'); }
  if (v === null || v === undefined) { return ''; }
  const s = String(v).slice(0, MAX_PARAM);
  return WORD_PARAMS.has(name) && own(messages, s) ? messages[s] : s;
}

export function t(key, params) {
  let s = own(messages, key) && messages[key] ? messages[key] : String(key);
  if (params && typeof params === 'object') {
    s = s.replace(/\{([A-Za-z_][A-Za-z0-9_]{0,31})\}/g,
      (m, name) => (own(params, name) ? param(name, params[name]) : m));
  }
  return s;
}

/* Times: HH:MM:SS on a 24 h clock, in KST. */
const TZ = 'Asia/Seoul';
const timeFmt = new Intl.DateTimeFormat('en-GB', { timeZone: TZ, hour: '2-digit', minute: '2-digit',
  second: '2-digit', hourCycle: 'h23' });
const dateTimeFmt = new Intl.DateTimeFormat(lang === 'ko' ? 'ko-KR' : 'en-GB', { timeZone: TZ,
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });

export function timeKst(ms) { return timeFmt.format(new Date(ms)); }
export function dateTimeKst(ms) { return dateTimeFmt.format(new Date(ms)); }

export function ageText(ms) {
  if (!ms) { return '-'; }
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 60 ? t('{n} s ago', { n: s }) : t('{n} min ago', { n: Math.round(s / 60) });
}

/* An event's text in the viewer's language: the producer's message key and params where the
 * catalogue knows the key, else the producer's own title (older producers), else its type. */
export function eventText(e) {
  if (e && typeof e.msg === 'string' && known(e.msg)) {
    return t(e.msg, e.params && typeof e.params === 'object' ? e.params : null);
  }
  return String((e && (e.title || e.type)) || '');
}
