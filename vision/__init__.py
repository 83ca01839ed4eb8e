"""CCTV analytics: sources, motion gate, detectors, tracking, rules, privacy masking, publishing.

Importing this package is cheap (no OpenCV, torch or ultralytics): the dashboard imports
`vision.config`. Heavy modules are imported by the worker and the CLI only.
"""
