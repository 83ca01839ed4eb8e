"""Widgets: the map, panels and tiles that layouts place on pages."""
