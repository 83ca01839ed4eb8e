/* Starts the live-socket ticket request while Dash's scripts are still loading.
 *
 * A classic script on purpose: the page's ES modules (assets/cc/) run only after the document is
 * parsed, ~0.8 s later on a wall; cc/socket.js takes this request for its first connection.
 */
(function () {
  'use strict';
  if (location.pathname === '/login') { return; }
  window.ccTicketRequest = fetch('/api/live/ticket', { credentials: 'same-origin', cache: 'no-store' });
})();
