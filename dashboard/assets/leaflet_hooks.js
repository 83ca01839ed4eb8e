/* Catches the Leaflet map and the live layer groups as Leaflet creates them.
 *
 * A classic script on purpose (Dash loads every assets/*.js before its renderer starts): the page's
 * ES modules (assets/cc/, deferred by the browser) may run after dash-leaflet has built the map, so
 * this queues what was created until cc/map.js takes over. No data passes through here.
 */
(function () {
  'use strict';
  var q = window.ccLeaflet = { maps: [], groups: [], onMap: null, onGroup: null };
  function hook() {
    if (!window.L) { setTimeout(hook, 5); return; }
    window.L.Map.addInitHook(function () {
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
