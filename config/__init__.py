"""Configuration: YAML files in this folder and their validated model (settings.py)."""
