/* Catches the Leaflet map and the live layer groups as Leaflet creates them, and gives each district
 * of the base map its name as a tooltip.
 *
 * A classic script on purpose (Dash loads every assets/*.js before its renderer starts): the page's
 * ES modules (assets/cc/, deferred by the browser) may run after dash-leaflet has built the map, so
 * this queues what was created until cc/map.js takes over.
 *
 * District names come from `map.boundary_file`, so they are data: the GeoJSON carries no `tooltip`
 * property (dash-leaflet would bind it as HTML) and the name is bound here as a text node, which
 * Leaflet appends as it is. The hook runs when the map is created, before any layer is added.
 */
(function () {
  'use strict';
  var q = window.ccLeaflet = { maps: [], groups: [], onMap: null, onGroup: null };
  function districtName(layer) {
    var p = layer && layer.feature && layer.feature.properties;
    if (!p || p.cc_district !== true || layer.getTooltip()) { return; }
    var text = [p.name_ko, p.name_en].filter(function (s) { return typeof s === 'string' && s; }).join(' ');
    if (text) { layer.bindTooltip(document.createTextNode(text)); }
  }
  function hook() {
    if (!window.L) { setTimeout(hook, 5); return; }
    window.L.Map.addInitHook(function () {
      this.on('layeradd', function (e) { districtName(e.layer); });
      if (q.onMap) { q.onMap(this); } else { q.maps.push(this); }
    });
    window.L.LayerGroup.addInitHook(function () {
      var id = this.options && this.options.id;
      if (typeof id !== 'string' || id.indexOf('cc-layer-') !== 0) { return; }
      if (q.onGroup) { q.onGroup(id.slice(9), this); } else { q.groups.push([id.slice(9), this]); }
    });
  }
  hook();
})();
