"""Emergency bells (안심비상벨) as an MQTT field source (docs/feeds.md "Emergency bells")."""
