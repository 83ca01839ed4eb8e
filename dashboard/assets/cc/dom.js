import { timeKst, ageText } from './i18n.js';

/* Times and ages are formatted in i18n.js (KST, the page's language); re-exported for the renderers. */
export { timeKst, ageText };

/* Building DOM from data: every string goes in as text (textContent or an attribute value set by
 * setAttribute), never as markup, so a message cannot add elements or run script. */
export function el(tag, attrs, children) {
  const e = document.createElement(tag);
  if (attrs) {
    for (const k of Object.keys(attrs)) {
      if (k === 'text') { e.textContent = String(attrs[k]); } else if (k === 'className') { e.className = attrs[k]; }
      else { e.setAttribute(k, String(attrs[k])); }
    }
  }
  if (children) { children.forEach((c) => { if (c !== null && c !== undefined) { e.append(c); } }); }
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const k of Object.keys(attrs || {})) { e.setAttribute(k, String(attrs[k])); }
  if (text !== undefined) { e.textContent = String(text); }
  return e;
}

export function setAll(sel, fn) {
  const els = document.querySelectorAll(sel);
  for (let i = 0; i < els.length; i++) { fn(els[i]); }
}

/* A finite number or the fallback: props are typed by the contract, but the page never trusts it. */
export function num(v, fallback) { return (typeof v === 'number' && isFinite(v)) ? v : fallback; }

