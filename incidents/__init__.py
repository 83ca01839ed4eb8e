"""Incidents: SQL records with an append-only timeline, SOPs as data with their engine, the nearest
cameras, CAP 1.2 share packages and after-action reports (docs/incidents.md)."""
