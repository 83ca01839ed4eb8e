/* Opens the live socket while the page is still loading.
 *
 * A classic script on purpose: the page's ES modules (assets/cc/) run only once the document is
 * parsed, which on a wall is 0.3-1 s after Dash's scripts have run. This asks for the ticket and
 * opens the WebSocket at once, keeping the messages that arrive until cc/socket.js adopts the socket
 * (window.ccEarlySocket: a promise of {ws, opened, queue, closed}, rejected with the ticket's HTTP status).
 * No message is parsed or shown here.
 */
(function () {
  'use strict';
  // /replay and the commander's replay mode (/commander?t=) show the past only: no live socket.
  var replaying = location.pathname === '/replay'
    || (location.pathname === '/commander' && new URLSearchParams(location.search).has('t'));
  if (location.pathname === '/login' || replaying) { return; }
  window.ccEarlySocket = fetch('/api/live/ticket', { credentials: 'same-origin', cache: 'no-store' })
    .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
    .then(function (t) {
      var base = t.url || ((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.hostname + ':' + t.port + '/live');
      var early = { ws: new WebSocket(base + '?ticket=' + encodeURIComponent(t.ticket)), queue: [], closed: null };
      early.ws.binaryType = 'arraybuffer';
      early.ws.onopen = function () { early.opened = true; };
      early.ws.onmessage = function (ev) { early.queue.push(ev); };
      early.ws.onclose = function (ev) { early.closed = ev; };
      return early;
    });
  window.ccEarlySocket.catch(function () { /* cc/socket.js handles it */ });
})();
