"""The shared spine: what every part (producers, gateway, web) agrees on.

- `contract`: the versioned wire messages (msgspec) and their hardened decoding;
- `channels`: every Redis key and channel name;
- `publisher`: how producers write state and publish (sequence numbers, outage buffering);
- `health`: feed health documents;
- `geography`: reference geography (districts, the service area);
- `tickets`: the signed live-socket tickets shared by the web server and the gateway;
- `stream_consumer`: the consumer-group loop (own pending, XAUTOCLAIM, ack after commit, back-off)
  and the run loop of the alarm service, the incident service and the history writer;
- `outbox`: their outbox publisher (what SQL committed, published once, in one MULTI with their writes);
- `servers`: the private Redis and Mosquitto that the embedded stack owns.

Nothing here imports `feeds`, `vision`, `dashboard` or the demo simulator.
"""
