"""Disaster and water sensors over MQTT: SensorThings-like Observations, threshold rules -> Events."""
