/* Finds the Leaflet map and the live layer groups as Leaflet creates them (dash-leaflet renders
 * them; the live layers are not Dash props, see widgets/city_map.py), and defines the bus dart. */
import { cc } from './state.js';

/* onMap(map) once per map, onGroup(layer, group) for each `cc-layer-<layer>` group: first for what
 * assets/leaflet_hooks.js queued before this module ran, then as Leaflet creates them. */
export function hookLeaflet(onMap, onGroup) {
  const q = window.ccLeaflet;
  if (!window.L || !q) { setTimeout(() => hookLeaflet(onMap, onGroup), 10); return; }
  defineArrowMarker();
  q.onMap = (map) => { cc.map = map; onMap(map); };
  q.onGroup = onGroup;
  q.maps.splice(0).forEach(q.onMap);
  q.groups.splice(0).forEach(([layer, group]) => onGroup(layer, group));
}

/* A canvas marker shaped as a dart pointing along `heading` (degrees from north). Drawn by the same
 * canvas renderer as circles, so thousands of moving buses still cost one redraw a frame. */
function defineArrowMarker() {
  const L = window.L;
  L.Canvas.include({
    _ccUpdateArrow(layer) {
      if (!this._drawing || layer._empty()) { return; }
      const p = layer._point, ctx = this._ctx, r = Math.max(layer._radius, 1);
      const a = (layer.options.heading || 0) * Math.PI / 180;
      const dx = Math.sin(a), dy = -Math.cos(a);  // forward, screen y grows downwards
      const nx = -dy, ny = dx;                    // to the right of forward
      ctx.beginPath();
      ctx.moveTo(p.x + dx * 1.9 * r, p.y + dy * 1.9 * r);
      ctx.lineTo(p.x - dx * r + nx * r, p.y - dy * r + ny * r);
      ctx.lineTo(p.x - dx * 0.4 * r, p.y - dy * 0.4 * r);
      ctx.lineTo(p.x - dx * r - nx * r, p.y - dy * r - ny * r);
      ctx.closePath();
      this._fillStroke(ctx, layer);
    },
  });
  cc.ArrowMarker = L.CircleMarker.extend({ _updatePath() { this._renderer._ccUpdateArrow(this); } });
}
