"""Feeds: the message contract, the Redis broker, one module per source and the simulator."""
