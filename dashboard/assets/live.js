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
  var BUS_FADE_MS = 90000;
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
    defineArrowMarker();
    L.Map.addInitHook(function () {
      cc.map = this;
      // Recent events as rings on the map (not a feed layer, so not in the layer control).
      cc.eventRings = L.layerGroup().addTo(this);
      cc.events.forEach(function (e) { ring(e); });
    });
    L.LayerGroup.addInitHook(function () {
      var id = this.options && this.options.id;
      if (typeof id !== 'string' || id.indexOf('cc-layer-') !== 0) { return; }
      var layer = id.slice(9);
      if (layer === 'routes') { loadRoutes(this); return; }
      cc.groups[layer] = this;
      cc.markers[layer] = new Map();
      cc.entities[layer].forEach(function (u) { place(u); });
    });
  }
  hookLeaflet();

  // A canvas marker shaped as a dart pointing along `heading` (degrees from north). Drawn by the
  // same canvas renderer as circles, so thousands of moving buses still cost one redraw a frame.
  function defineArrowMarker() {
    L.Canvas.include({
      _ccUpdateArrow: function (layer) {
        if (!this._drawing || layer._empty()) { return; }
        var p = layer._point, ctx = this._ctx, r = Math.max(layer._radius, 1);
        var a = (layer.options.heading || 0) * Math.PI / 180;
        var dx = Math.sin(a), dy = -Math.cos(a);  // forward, screen y grows downwards
        var nx = -dy, ny = dx;                    // to the right of forward
        ctx.beginPath();
        ctx.moveTo(p.x + dx * 1.9 * r, p.y + dy * 1.9 * r);
        ctx.lineTo(p.x - dx * r + nx * r, p.y - dy * r + ny * r);
        ctx.lineTo(p.x - dx * 0.4 * r, p.y - dy * 0.4 * r);
        ctx.lineTo(p.x - dx * r - nx * r, p.y - dy * r - ny * r);
        ctx.closePath();
        this._fillStroke(ctx, layer);
      }
    });
    cc.ArrowMarker = L.CircleMarker.extend({
      _updatePath: function () { this._renderer._ccUpdateArrow(this); }
    });
  }

  // ---- markers ------------------------------------------------------------------------------
  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function styleFor(u) {
    var p = u.props || {};
    switch (u.layer) {
      case 'bus': {
        // GTFS-realtime contract: a vehicle silent for 90 s is shown faded until its feed drops it.
        var old = p.stale || (Date.now() - u.ts > BUS_FADE_MS);
        return { radius: 4, color: old ? '#4b5d73' : COLORS.bus, key: old ? 'bo' : 'b' };
      }
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
    var rows = Object.keys(u.props || {}).filter(function (k) { return HIDDEN_PROPS.indexOf(k) < 0; })
      .map(function (k) {
        var v = u.props[k];
        if (typeof v === 'number' && v > 1e12 && v < 1e14) { v = timeKst(v); }  // epoch ms
        if (v !== null && typeof v === 'object') { v = JSON.stringify(v); }
        return '<tr><th>' + esc(k) + '</th><td>' + esc(v === null || v === undefined ? '-' : v) + '</td></tr>';
      }).join('');
    var aqi = u.props && u.props.aqi_us;
    if (aqi && aqi.value !== null && aqi.value !== undefined) {
      rows += '<tr><th>US EPA AQI (2024)</th><td>' + esc(aqi.value + ' ' + (aqi.category || '')) + '</td></tr>';
    }
    var video = (layer === 'camera' && u.props && u.props.video) ?
      '<img class="cc-popup-video" alt="live video of ' + esc(u.props.name || id) + '" data-cc-video="' +
      esc(id) + '">' : '';
    var chart = layer === 'air' ? '<div class="cc-chart" data-cc-chart="' + esc(id) + '">loading 24 h...</div>' : '';
    return '<div class="cc-popup"><h3>' + esc(id) + '</h3>' + video + chart + '<table>' + rows +
      '<tr><th>updated</th><td>' + esc(timeKst(u.ts)) + '</td></tr></table></div>';
  }

  var HIDDEN_PROPS = ['footprint', 'cai_sub', 'cai_grades', 'aqi_us'];

  // A 24 h PM10 / PM2.5 chart for an air station, drawn as SVG when its popup opens.
  function airChart(id, el) {
    fetch('/api/air/' + encodeURIComponent(id) + '/history', { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (h) {
        var pts = (h.points || []).filter(function (p) { return p.pm10 !== null || p.pm25 !== null; });
        if (!pts.length) { el.textContent = 'no history yet'; return; }
        var W = 320, H = 110, t0 = pts[0].t, t1 = pts[pts.length - 1].t || t0 + 1;
        var ymax = Math.max(80, Math.max.apply(null, pts.map(function (p) { return Math.max(p.pm10 || 0, p.pm25 || 0); })));
        function x(t) { return 30 + (t - t0) / Math.max(1, t1 - t0) * (W - 36); }
        function y(v) { return H - 16 - v / ymax * (H - 24); }
        function line(key, color) {
          var d = pts.filter(function (p) { return p[key] !== null && p[key] !== undefined; })
            .map(function (p, i) { return (i ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(p[key]).toFixed(1); }).join(' ');
          return '<path d="' + d + '" fill="none" stroke="' + color + '" stroke-width="2"/>';
        }
        // Grade bands of PM10 (30 / 80 / 150) as faint guides.
        var guides = [30, 80, 150].filter(function (v) { return v < ymax; }).map(function (v) {
          return '<line x1="30" x2="' + W + '" y1="' + y(v) + '" y2="' + y(v) + '" stroke="#30363d" stroke-dasharray="3 3"/>' +
            '<text x="2" y="' + (y(v) + 4) + '" fill="#8b949e" font-size="10">' + v + '</text>';
        }).join('');
        el.innerHTML = '<svg width="' + W + '" height="' + H + '" role="img" aria-label="PM10 and PM2.5, last 24 hours">' +
          guides + line('pm10', '#79c0ff') + line('pm25', '#d2a8ff') +
          '<text x="30" y="' + (H - 2) + '" fill="#8b949e" font-size="10">24 h: PM10 (blue) PM2.5 (violet) µg/m³</text></svg>';
      })
      .catch(function () { el.textContent = 'history unavailable'; });
  }

  // Static route lines from the transit adapter's GTFS shapes, under the live canvas.
  function loadRoutes(group) {
    fetch('/api/transit/shapes', { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : {}; })
      .then(function (shapes) {
        Object.keys(shapes).forEach(function (k) {
          var sh = shapes[k];
          group.addLayer(L.polyline(sh.coords, { color: sh.color ? '#' + String(sh.color).replace('#', '') : '#2dd4bf',
            weight: 2, opacity: 0.35, pane: 'cc-base', interactive: false }));
        });
      })
      .catch(function () { /* no transit feed configured: the overlay stays empty */ });
  }

  // A camera's field of view as a sector under the markers (80 m: a street camera's useful reach).
  var CONE_M = 80;
  function cone(m, u) {
    var p = u.props || {};
    if (typeof p.heading !== 'number' || typeof p.fov !== 'number') { return; }
    var key = p.heading + '/' + p.fov + '/' + u.lat + '/' + u.lon;
    if (m.ccConeKey === key) { return; }
    m.ccConeKey = key;
    var pts = [[u.lat, u.lon]], cosLat = Math.cos(u.lat * Math.PI / 180);
    for (var a = p.heading - p.fov / 2; a <= p.heading + p.fov / 2 + 0.01; a += Math.max(p.fov / 8, 1)) {
      var r = a * Math.PI / 180;
      pts.push([u.lat + CONE_M * Math.cos(r) / 111320, u.lon + CONE_M * Math.sin(r) / (111320 * cosLat)]);
    }
    if (!m.ccCone) {
      m.ccCone = L.polygon(pts, { color: '#58a6ff', weight: 1, opacity: 0.5, fillOpacity: 0.12,
        pane: 'cc-base', interactive: false });
      cc.groups[u.layer].addLayer(m.ccCone);
    } else {
      m.ccCone.setLatLngs(pts);
    }
  }

  // Analytics cameras carry a badge with what they see now (few cameras, so DOM tooltips are fine).
  function badge(m, u) {
    var p = u.props || {};
    if (!p.video) { return; }
    var active = p.last_activity && (Date.now() - p.last_activity < 30000);
    var text = (p.status === 'offline' ? 'OFFLINE' : (p.people || 0) + ' people · ' + (p.vehicles || 0) + ' vehicles');
    var cls = 'cc-cam-badge' + (active ? ' cc-cam-active' : '');
    if (!m.ccBadge) {
      m.ccBadge = true;
      m.bindTooltip(text, { permanent: true, direction: 'right', offset: [8, 0], className: cls });
    } else {
      m.setTooltipContent(text);
      var el = m.getTooltip() && m.getTooltip().getElement();
      if (el) { el.className = el.className.replace(/ ?cc-cam-active/g, '') + (active ? ' cc-cam-active' : ''); }
    }
  }

  function footprint(m, u) {
    var fp = u.props && u.props.footprint;
    if (!fp || fp.length < 3) { return; }
    if (!m.ccFootprint) {
      m.ccFootprint = L.polygon(fp, { color: '#f0f6fc', weight: 1.5, dashArray: '2 4', fillOpacity: 0.08, interactive: false });
      cc.groups[u.layer].addLayer(m.ccFootprint);
    } else {
      m.ccFootprint.setLatLngs(fp);
    }
  }

  function place(u) {
    var group = cc.groups[u.layer];
    if (!group) { return; }
    var markers = cc.markers[u.layer];
    var m = markers.get(u.id);
    if (u.gone) {
      if (m) {
        group.removeLayer(m); markers.delete(u.id);
        if (m.ccTrail) { group.removeLayer(m.ccTrail); }
        if (m.ccFootprint) { group.removeLayer(m.ccFootprint); }
        if (m.ccCone) { group.removeLayer(m.ccCone); }
      }
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
        footprint(m, u);
      } else {
        m.setLatLng(ll);
        m.setIcon(droneIcon(u));
        footprint(m, u);
        var pts = m.ccTrail.getLatLngs(); pts.push(L.latLng(ll));
        if (pts.length > 120) { pts.shift(); }
        m.ccTrail.setLatLngs(pts);
      }
      return;
    }
    var s = styleFor(u);
    var heading = u.props && u.props.heading;
    if (!m) {
      var opts = { radius: s.radius, color: '#e6edf3', weight: s.stroke ? 2 : 0,
        stroke: !!s.stroke, fillColor: s.color, fillOpacity: 0.9, heading: heading };
      m = (u.layer === 'bus' && typeof heading === 'number') ? new cc.ArrowMarker(ll, opts) : L.circleMarker(ll, opts);
      m.ccKey = s.key;
      bind(m, u);
      group.addLayer(m);
      markers.set(u.id, m);
      if (u.layer === 'camera') { cone(m, u); badge(m, u); }
    } else {
      if (u.layer === 'camera') { cone(m, u); badge(m, u); }
      if (typeof heading === 'number') { m.options.heading = heading; }
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
    var wide = layer === 'air' || (layer === 'camera' && u.props && u.props.video);
    m.bindPopup(function () { return popupHtml(layer, id); }, { maxWidth: 480, minWidth: wide ? 340 : 0 });
    if (layer === 'camera') {
      // The popup's video plays only while it is open.
      m.on('popupopen', function (e) {
        var img = e.popup.getElement().querySelector('img.cc-popup-video');
        if (img) { cc.watchVideo(img, id); }
      });
      m.on('popupclose', function (e) {
        var el = e.popup.getElement();
        var img = el && el.querySelector('img.cc-popup-video');
        if (img) { cc.watchVideo(img, ''); }
      });
    }
    if (layer === 'air') {
      m.on('popupopen', function (e) {
        var el = e.popup.getElement().querySelector('[data-cc-chart]');
        if (el) { airChart(id, el); }
      });
    }
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

  var SEV_COLORS = { critical: '#f85149', high: '#ff7b72', medium: '#f0883e', low: '#d29922', info: '#8b949e' };
  var RING_MS = 30 * 60 * 1000;

  function ring(e) {
    if (!cc.eventRings || Date.now() - e.ts > RING_MS || e.severity === 'info') { return; }
    var r = L.circleMarker([e.lat, e.lon], { radius: 13, color: SEV_COLORS[e.severity] || '#f0883e',
      weight: 3, fill: false, interactive: false });
    r.ccTs = e.ts;
    cc.eventRings.addLayer(r);
  }

  function pruneRings() {
    if (!cc.eventRings) { return; }
    cc.eventRings.eachLayer(function (r) { if (Date.now() - r.ccTs > RING_MS) { cc.eventRings.removeLayer(r); } });
  }

  function addEvents(list) {
    if (!list || !list.length) { return; }
    for (var i = 0; i < list.length; i++) { cc.events.unshift(list[i]); ring(list[i]); }
    if (cc.events.length > 500) { cc.events.length = 500; }
    renderEvents();
  }

  function onSnapshot(f) {
    cc.stats.snapshots += 1;
    if (!cc.firstPictureMs) {
      // Time from navigation start to the first complete picture (budget: 2 s on a wall).
      requestAnimationFrame(function () { cc.firstPictureMs = Math.round(performance.now()); });
    }
    f.layers.forEach(function (layer) {
      var group = cc.groups[layer];
      if (group) { group.clearLayers(); }
      cc.markers[layer] = new Map();
      cc.entities[layer] = new Map();
    });
    for (var i = 0; i < f.u.length; i++) { applyUpdate(f.u[i]); }
    if (f.e && f.e.length) {
      cc.events = [];
      if (cc.eventRings) { cc.eventRings.clearLayers(); }
      addEvents(f.e);  // oldest first, as the gateway sends them: the newest ends on top
    }
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

  // ---- video over the live socket -----------------------------------------------------------
  // Tiles and popups register their <img> for a camera; the page tells the gateway which cameras
  // it shows, and each frame arrives as a binary message: 0x00, id length, id, JPEG.
  cc.videoImgs = new Map();  // img element -> camera id
  cc.videoUrls = {};         // camera id -> object URL of its newest frame
  cc.videoKey = null;

  cc.watchVideo = function (img, cam) {
    if ((cc.videoImgs.get(img) || '') === (cam || '')) { return; }
    if (cam) { cc.videoImgs.set(img, cam); if (cc.videoUrls[cam]) { img.src = cc.videoUrls[cam]; } }
    else { cc.videoImgs.delete(img); img.removeAttribute('src'); }
    syncVideo();
  };

  function syncVideo() {
    var cams = {};
    cc.videoImgs.forEach(function (cam, img) {
      if (img.isConnected) { cams[cam] = true; } else { cc.videoImgs.delete(img); }
    });
    var list = Object.keys(cams).sort(), key = list.join('|');
    if (key === cc.videoKey || !cc.ws || cc.ws.readyState !== 1) { return; }
    cc.videoKey = key;
    Object.keys(cc.videoUrls).forEach(function (c) {
      if (!cams[c]) { URL.revokeObjectURL(cc.videoUrls[c]); delete cc.videoUrls[c]; }
    });
    send({ op: 'video', cams: list });
  }

  function onVideo(buf) {
    var bytes = new Uint8Array(buf), n = bytes[1];
    var cam = decoder.decode(bytes.subarray(2, 2 + n));
    var url = URL.createObjectURL(new Blob([bytes.subarray(2 + n)], { type: 'image/jpeg' }));
    var old = cc.videoUrls[cam];
    cc.videoUrls[cam] = url;
    cc.videoImgs.forEach(function (c, img) { if (c === cam) { img.src = url; } });
    // The old frame stays on screen as a decoded bitmap; its URL can go.
    if (old) { URL.revokeObjectURL(old); }
    cc.stats.videoFrames = (cc.stats.videoFrames || 0) + 1;
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
        ws.onopen = function () { cc.connected = true; backoff = 500; cc.videoKey = null; syncVideo(); updateStatus(); };
        ws.onmessage = function (ev) {
          if (typeof ev.data !== 'string' && ev.data.byteLength && new Uint8Array(ev.data, 0, 1)[0] === 0) {
            onVideo(ev.data);
            return;
          }
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

  function telemetryText(d) {
    if (!d) { return 'no telemetry'; }
    var p = d.props || {}, age = Math.round((Date.now() - d.ts) / 1000);
    return 'ALT ' + Math.round(p.alt_m || 0) + ' m  HDG ' + Math.round(p.heading || 0) + '°  ' +
      (p.speed_ms || 0).toFixed(1) + ' m/s  BAT ' + Math.round(p.battery_pct || 0) + ' %  ' +
      (p.mode || '') + (age > 5 ? '  (' + age + ' s old)' : '');
  }

  function renderPanels() {
    updateStatus();
    setAll('[data-cc-telemetry]', function (el) {
      var t = telemetryText(cc.entities.drone.get(el.dataset.ccTelemetry));
      if (el.textContent !== t) { el.textContent = t; }
    });
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
        '<span class="cc-event-title">' + esc(e.title || e.type) + '</span>' +
        (e.snapshot && i < 6 ? '<img class="cc-event-snap" alt="snapshot" loading="lazy" src="/api/snapshots/' +
          encodeURIComponent(e.snapshot) + '.jpg">' : '') + '</li>';
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

  // Buses that went quiet fade without any new message, so restyle by age now and then.
  function fadeSweep() {
    var markers = cc.markers.bus;
    cc.entities.bus.forEach(function (u, id) {
      var m = markers.get(id);
      if (!m) { return; }
      var s = styleFor(u);
      if (m.ccKey !== s.key) { m.ccKey = s.key; m.setStyle({ fillColor: s.color }); }
    });
  }

  // Feed health is a slow panel (the adapters write it every 2 s): polled every 5 s.
  function markStaleLayers(h) {
    LAYERS.forEach(function (layer) {
      var stale = !!(h['layer:' + layer] && h['layer:' + layer].stale);
      setAll('[data-cc-legend="' + layer + '"], [data-cc-age="' + layer + '"]', function (el) {
        el.classList.toggle('cc-layer-stale', stale);
      });
    });
  }

  function renderHealth() {
    if (location.pathname === '/login') { return; }
    var table = document.getElementById('cc-health');
    fetch('/api/health', { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (h) {
        markStaleLayers(h);
        if (!table) { return; }
        var rows = Object.keys(h).filter(function (k) { return k.indexOf('layer:') !== 0; }).sort().map(function (k) {
          var f = h[k];
          var age = f.age_s === null || f.age_s === undefined ? '-' : (f.age_s < 60 ? f.age_s.toFixed(0) + ' s' : (f.age_s / 60).toFixed(0) + ' min');
          return '<tr class="cc-health-' + esc(f.state) + '"><td>' + esc(k) + '</td><td>' + esc(String(f.state).toUpperCase()) +
            '</td><td>' + esc(age) + ' / ' + esc(f.contract_s) + ' s</td><td>' + esc(f.msgs_per_s) + '</td><td>' + esc(f.rejects) + '</td></tr>';
        }).join('');
        table.querySelector('tbody').innerHTML = rows || '<tr><td colspan="5">no feed reports health</td></tr>';
      })
      .catch(function () { if (table) { table.querySelector('tbody').innerHTML = '<tr><td colspan="5">health unavailable</td></tr>'; } });
  }

  // Panels refresh once a second; a page that appears later (navigation) fills at the next tick.
  setInterval(function () { renderPanels(); renderEvents(); syncVideo(); }, 1000);
  setInterval(fadeSweep, 5000);
  setInterval(pruneRings, 60000);
  setInterval(renderHealth, 5000);
  setTimeout(renderHealth, 1500);

  if (location.pathname !== '/login') { connect(); }
})();
