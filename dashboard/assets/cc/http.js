/* JSON from this server's history API (trends, replay). The API holds a few query slots per user and
 * per process (dashboard/history_api.py) and answers 503 with Retry-After when they are taken: this
 * waits as told (1..10 s) and asks again, at most RETRIES times, before giving up. */
const RETRIES = 3;

function wait(ms) { return new Promise((resolve) => { setTimeout(resolve, ms); }); }

export function getJson(url, tries) {
  const left = tries === undefined ? RETRIES : tries;
  return fetch(url, { credentials: 'same-origin', cache: 'no-store' }).then((r) => {
    if (r.ok) { return r.json(); }
    if (r.status === 503 && left > 0) {
      const after = Math.min(10, Math.max(1, Number(r.headers.get('Retry-After')) || 2));
      return wait(after * 1000).then(() => getJson(url, left - 1));
    }
    return Promise.reject(new Error('HTTP ' + r.status));
  });
}
