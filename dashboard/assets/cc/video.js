/* Camera video over the live socket. Tiles and popups register their <img> for a camera; the page
 * tells the gateway which cameras it shows ({op: 'video', cams}), and each frame arrives as a
 * binary message: 0x00, id length, id (UTF-8), JPEG. Frames are shown through blob: URLs. */
import { cc } from './state.js';

const decoder = new TextDecoder();

export function watchVideo(img, cam) {
  if ((cc.videoImgs.get(img) || '') === (cam || '')) { return; }
  if (cam) {
    cc.videoImgs.set(img, cam);
    if (cc.videoUrls[cam]) { img.src = cc.videoUrls[cam]; }
  } else {
    cc.videoImgs.delete(img);
    img.removeAttribute('src');
  }
  syncVideo();
}
cc.watchVideo = watchVideo;

/* Tell the gateway when the set of cameras on screen changed (and after every reconnect). */
export function syncVideo() {
  const cams = {};
  cc.videoImgs.forEach((cam, img) => { if (img.isConnected) { cams[cam] = true; } else { cc.videoImgs.delete(img); } });
  const list = Object.keys(cams).sort(), key = list.join('|');
  if (key === cc.videoKey || !cc.ws || cc.ws.readyState !== 1) { return; }
  cc.videoKey = key;
  Object.keys(cc.videoUrls).forEach((c) => {
    if (!cams[c]) { URL.revokeObjectURL(cc.videoUrls[c]); delete cc.videoUrls[c]; }
  });
  cc.ws.send(JSON.stringify({ op: 'video', cams: list }));
}

export function isVideo(data) {
  return typeof data !== 'string' && data.byteLength > 2 && new Uint8Array(data, 0, 1)[0] === 0;
}

export function onVideo(buf) {
  const bytes = new Uint8Array(buf), n = bytes[1];
  const cam = decoder.decode(bytes.subarray(2, 2 + n));
  const url = URL.createObjectURL(new Blob([bytes.subarray(2 + n)], { type: 'image/jpeg' }));
  const old = cc.videoUrls[cam];
  cc.videoUrls[cam] = url;
  cc.videoImgs.forEach((c, img) => { if (c === cam) { img.src = url; } });
  // The old frame stays on screen as a decoded bitmap; its URL can go.
  if (old) { URL.revokeObjectURL(old); }
  cc.stats.videoFrames += 1;
}
