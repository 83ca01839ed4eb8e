/* Live layer: applies the gateway's frames to Leaflet markers in place.
 *
 * Kept outside Dash props on purpose: Dash merges prop updates when the page is busy, which loses
 * deltas, and a GeoJSON layer rebuilds all markers on each change. Here each entity has one
 * marker that moves (canvas renderer), frames carry a counter `n`, and a gap asks for a snapshot.
 */
(function () {
  'use strict';

  var LAYERS = ['bus', 'camera', 'sensor', 'air', 'drone', 'incident'];
  var COLORS = { bus: '#2dd4bf', camera: '#58a6ff', sensor: '#bc8cff', air: '#8b949e',
                 drone: '#f0f6fc', incident: '#ff7b72' };
  var CAMERA_COLORS = { crime_prevention: '#58a6ff', traffic: '#79c0ff', disaster: '#d2a8ff' };
  var AIR_COLORS = { '좋음': '#32a1ff', '보통': '#00c73c', '나쁨': '#fd9b5a', '매우나쁨': '#ff5959' };
  var AIR_ORDER = ['좋음', '보통', '나쁨', '매우나쁨'];
  var LEVEL_COLORS = { normal: '#bc8cff', caution: '#f0883e', warning: '#ff7b72', critical: '#ff4040' };
  var STALE_MS = 6000;
  var MAX_EVENTS = 40;

  var cc = window.ccLive = {
    entities: {}, markers: {}, groups: {}, map: null, n: null, ws: null,
    lastFrameAt: 0, lastLayerTs: {}, redisUp: true, events: [], connected: false,
    stats: { frames: 0, applied: 0, resyncs: 0, snapshots: 0, reconnects: 0 },
    bench: null  // set to {lat: []} by the benchmark to collect publish-to-paint latencies
  };
  LAYERS.forEach(function (l) { cc.entities[l] = new Map(); cc.markers[l] = new Map(); });

  // ---- Leaflet hooks: find the map and the live layer groups as Leaflet creates them -------
  function hookLeaflet() {
    if (!window.L) { setTimeout(hookLeaflet, 10); return; }
    L.Map.addInitHook(function () { cc.map = this; });
    L.LayerGroup.addInitHook(function () {
      var id = this.options && this.options.id;
      if (typeof id !== 'string' || id.indexOf('cc-layer-') !== 0) { return; }
      var layer = id.slice(9);
      cc.groups[layer] = this;
      cc.markers[layer] = new Map();
      cc.entities[layer].forEach(function (u) { place(u); });
    });
  }
  hookLeaflet();

  // ---- markers ------------------------------------------------------------------------------
  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function styleFor(u) {
    var p = u.props || {};
    switch (u.layer) {
      case 'bus': return { radius: 3.5, color: COLORS.bus, key: 'b' };
      case 'camera': {
        var active = p.last_activity && (Date.now() - p.last_activity < 30000);
        var c = p.status === 'offline' ? '#6e7681' : (CAMERA_COLORS[p.type] || COLORS.camera);
        return { radius: active ? 7 : 4.5, color: c, stroke: active, key: c + active };
      }
      case 'sensor': {
        var lc = LEVEL_COLORS[p.level] || COLORS.sensor;
        return { radius: 7, color: lc, stroke: p.level && p.level !== 'normal', key: lc };
      }
      case 'air': { var ac = AIR_COLORS[p.grade] || COLORS.air; return { radius: 9, color: ac, key: ac }; }
      default: return { radius: 8, color: COLORS[u.layer] || '#fff', key: 'd' };
    }
  }

  function droneIcon(u) {
    var h = (u.props && u.props.heading) || 0;
    return L.divIcon({ className: 'cc-drone-icon', iconSize: [34, 34], iconAnchor: [17, 17],
      html: '<div style="transform:rotate(' + h + 'deg)">&#x27A4;</div>' });
  }

  function popupHtml(layer, id) {
    var u = cc.entities[layer].get(id);
    if (!u) { return 'gone'; }
    var rows = Object.keys(u.props || {}).map(function (k) {
      var v = u.props[k];
      if (k === 'last_activity' && v) { v = timeKst(v); }
      return '<tr><th>' + esc(k) + '</th><td>' + esc(v === null ? '-' : v) + '</td></tr>';
    }).join('');
    return '<div class="cc-popup"><h3>' + esc(id) + '</h3><table>' + rows +
      '<tr><th>updated</th><td>' + esc(timeKst(u.ts)) + '</td></tr></table></div>';
  }

  function place(u) {
    var group = cc.groups[u.layer];
    if (!group) { return; }
    var markers = cc.markers[u.layer];
    var m = markers.get(u.id);
    if (u.gone) {
      if (m) { group.removeLayer(m); markers.delete(u.id); if (m.ccTrail) { group.removeLayer(m.ccTrail); } }
      return;
    }
    var ll = [u.lat, u.lon];
    if (u.layer === 'drone') {
      if (!m) {
        m = L.marker(ll, { icon: droneIcon(u), keyboard: false });
        m.ccTrail = L.polyline([ll], { color: '#f0f6fc', weight: 2, opacity: 0.6, dashArray: '4 6' });
        group.addLayer(m.ccTrail);
        bind(m, u);
        group.addLayer(m);
        markers.set(u.id, m);
      } else {
        m.setLatLng(ll);
        m.setIcon(droneIcon(u));
        var pts = m.ccTrail.getLatLngs(); pts.push(L.latLng(ll));
        if (pts.length > 120) { pts.shift(); }
        m.ccTrail.setLatLngs(pts);
      }
      return;
    }
    var s = styleFor(u);
    if (!m) {
      m = L.circleMarker(ll, { radius: s.radius, color: '#e6edf3', weight: s.stroke ? 2 : 0,
        stroke: !!s.stroke, fillColor: s.color, fillOpacity: 0.9 });
      m.ccKey = s.key;
      bind(m, u);
      group.addLayer(m);
      markers.set(u.id, m);
    } else {
      m.setLatLng(ll);
      if (m.ccKey !== s.key) {
        m.ccKey = s.key;
        m.setStyle({ fillColor: s.color, stroke: !!s.stroke, weight: s.stroke ? 2 : 0 });
        m.setRadius(s.radius);
      }
    }
  }

  function bind(m, u) {
    var layer = u.layer, id = u.id;
    m.bindPopup(function () { return popupHtml(layer, id); }, { maxWidth: 420 });
  }

  // ---- frames -------------------------------------------------------------------------------
  function applyUpdate(u) {
    var known = cc.entities[u.layer];
    if (!known) { return false; }
    var old = known.get(u.id);
    if (old && old.ts > u.ts) { return false; }  // an older value than the one shown
    if (u.gone) { known.delete(u.id); } else { known.set(u.id, u); }
    var prev = cc.lastLayerTs[u.layer] || 0;
    if (u.ts > prev) { cc.lastLayerTs[u.layer] = u.ts; }
    place(u);
    cc.stats.applied += 1;
    return true;
  }

  function addEvents(list) {
    if (!list || !list.length) { return; }
    for (var i = 0; i < list.length; i++) { cc.events.unshift(list[i]); }
    if (cc.events.length > 500) { cc.events.length = 500; }
    renderEvents();
  }

  function onSnapshot(f) {
    cc.stats.snapshots += 1;
    f.layers.forEach(function (layer) {
      var group = cc.groups[layer];
      if (group) { group.clearLayers(); }
      cc.markers[layer] = new Map();
      cc.entities[layer] = new Map();
    });
    for (var i = 0; i < f.u.length; i++) { applyUpdate(f.u[i]); }
    if (f.e && f.e.length) { cc.events = []; addEvents(f.e); }
    if (typeof f.redis === 'boolean') { cc.redisUp = f.redis; }
  }

  function onBatch(f) {
    var applied = [];
    for (var i = 0; i < f.u.length; i++) {
      if (applyUpdate(f.u[i])) { applied.push(f.u[i].ts); }
    }
    addEvents(f.e);
    if (cc.bench && applied.length) {
      // Latency to the next painted frame, which is what an operator actually sees.
      requestAnimationFrame(function () {
        var now = Date.now();
        for (var j = 0; j < applied.length; j++) { cc.bench.lat.push(now - applied[j]); }
      });
    }
  }

  function onFrame(f) {
    cc.lastFrameAt = Date.now();
    if (f.t === 'hb') { cc.redisUp = f.redis; updateStatus(); return; }
    cc.stats.frames += 1;
    if (f.t === 'snapshot') {
      cc.n = f.n;
      onSnapshot(f);
    } else if (f.t === 'batch') {
      if (cc.n !== null && f.n !== cc.n + 1) {
        // Missed a frame: ask for the whole picture rather than show a wrong one.
        cc.stats.resyncs += 1;
        cc.n = null;
        send({ op: 'resync' });
        return;
      }
      if (cc.n === null) { return; }  // waiting for the snapshot we asked for
      cc.n = f.n;
      onBatch(f);
    }
    updateStatus();
  }

  // ---- connection ---------------------------------------------------------------------------
  var backoff = 500;
  var decoder = new TextDecoder();

  function send(obj) {
    if (cc.ws && cc.ws.readyState === 1) { cc.ws.send(JSON.stringify(obj)); }
  }

  function scheduleReconnect() {
    cc.connected = false;
    updateStatus();
    var wait = Math.min(backoff, 10000) * (0.75 + Math.random() * 0.5);
    backoff = Math.min(backoff * 2, 10000);
    setTimeout(connect, wait);
  }

  function connect() {
    fetch('/api/live/ticket', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) {
        if (r.status === 401) { window.location.href = '/login?next=' + encodeURIComponent(location.pathname); throw new Error('login'); }
        if (!r.ok) { throw new Error('ticket ' + r.status); }
        return r.json();
      })
      .then(function (t) {
        var base = t.url || ((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.hostname + ':' + t.port + '/live');
        var ws = new WebSocket(base + '?ticket=' + encodeURIComponent(t.ticket));
        ws.binaryType = 'arraybuffer';
        cc.ws = ws;
        cc.n = null;
        ws.onopen = function () { cc.connected = true; backoff = 500; updateStatus(); };
        ws.onmessage = function (ev) {
          var text = typeof ev.data === 'string' ? ev.data : decoder.decode(ev.data);
          var f;
          try { f = JSON.parse(text); } catch (e) { return; }
          onFrame(f);
        };
        ws.onclose = function () { if (cc.ws === ws) { cc.ws = null; cc.stats.reconnects += 1; scheduleReconnect(); } };
        ws.onerror = function () { try { ws.close(); } catch (e) { /* closing anyway */ } };
      })
      .catch(function (e) { if (String(e.message) !== 'login') { scheduleReconnect(); } });
  }

  // ---- status, KPIs, events, clock ----------------------------------------------------------
  function statusNow() {
    if (!cc.connected) { return 'reconnecting'; }
    if (!cc.redisUp || Date.now() - cc.lastFrameAt > STALE_MS) { return 'stale'; }
    return 'live';
  }

  function updateStatus() {
    var el = document.getElementById('cc-live-status');
    if (!el) { return; }
    var s = statusNow();
    if (el.dataset.state !== s) {
      el.dataset.state = s;
      el.className = 'cc-status cc-status-' + s;
      el.textContent = s === 'live' ? 'LIVE' : (s === 'stale' ? 'STALE' : 'RECONNECTING');
    }
  }

  function timeKst(ms) {
    return new Date(ms).toLocaleTimeString('en-GB', { hour12: false, timeZone: 'Asia/Seoul' });
  }

  function ageText(ms) {
    if (!ms) { return '-'; }
    var s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 60 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
  }

  function setAll(sel, fn) {
    var els = document.querySelectorAll(sel);
    for (var i = 0; i < els.length; i++) { fn(els[i]); }
  }

  function kpis() {
    var now = Date.now(), late = 0, active = 0, alarm = 0, worst = -1, recent = 0;
    cc.entities.bus.forEach(function (u) { if ((u.props.delay_s || 0) > 300) { late += 1; } });
    cc.entities.camera.forEach(function (u) { if (u.props.last_activity && now - u.props.last_activity < 30000) { active += 1; } });
    cc.entities.sensor.forEach(function (u) { if (u.props.level && u.props.level !== 'normal') { alarm += 1; } });
    cc.entities.air.forEach(function (u) { worst = Math.max(worst, AIR_ORDER.indexOf(u.props.grade)); });
    cc.events.forEach(function (e) { if (now - e.ts < 3600000) { recent += 1; } });
    return { bus: cc.entities.bus.size, bus_late: late, camera_active: active, sensor_alarm: alarm,
             air_worst: worst >= 0 ? AIR_ORDER[worst] : '-', events: recent };
  }

  function renderPanels() {
    updateStatus();
    var k = kpis();
    setAll('[data-cc-kpi]', function (el) { var v = String(k[el.dataset.ccKpi]); if (el.textContent !== v) { el.textContent = v; } });
    setAll('[data-cc-count]', function (el) { el.textContent = String(cc.entities[el.dataset.ccCount].size); });
    setAll('[data-cc-age]', function (el) { el.textContent = ageText(cc.lastLayerTs[el.dataset.ccAge]); });
    setAll('[data-cc-clock]', function (el) {
      el.textContent = timeKst(Date.now()) + ' KST';
    });
  }

  function renderEvents() {
    var ul = document.getElementById('cc-events');
    if (!ul) { return; }
    var html = cc.events.slice(0, MAX_EVENTS).map(function (e, i) {
      return '<li class="cc-event cc-sev-' + esc(e.severity) + '" data-cc-event="' + i + '" tabindex="0">' +
        '<span class="cc-event-time">' + esc(timeKst(e.ts)) + '</span>' +
        '<span class="cc-event-sev">' + esc(e.severity.toUpperCase()) + '</span>' +
        '<span class="cc-event-title">' + esc(e.title || e.type) + '</span></li>';
    }).join('');
    if (ul.ccHtml !== html) { ul.innerHTML = html; ul.ccHtml = html; }
  }

  // Clicking (or tapping) an event flies the map to it; layer toggles for the tablet.
  document.addEventListener('click', function (ev) {
    var li = ev.target.closest && ev.target.closest('[data-cc-event]');
    if (li && cc.map) {
      var e = cc.events[Number(li.dataset.ccEvent)];
      if (e) { cc.map.flyTo([e.lat, e.lon], Math.max(cc.map.getZoom(), 15)); }
      return;
    }
    var btn = ev.target.closest && ev.target.closest('[data-cc-toggle]');
    if (btn && cc.map) {
      var g = cc.groups[btn.dataset.ccToggle];
      if (!g) { return; }
      var on = cc.map.hasLayer(g);
      if (on) { cc.map.removeLayer(g); } else { cc.map.addLayer(g); }
      btn.classList.toggle('cc-on', !on);
      btn.setAttribute('aria-pressed', String(!on));
    }
  });

  // Panels refresh once a second; a page that appears later (navigation) fills at the next tick.
  setInterval(function () { renderPanels(); renderEvents(); }, 1000);

  if (location.pathname !== '/login') { connect(); }
})();
