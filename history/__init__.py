"""History and replay: the writer (app.py --only history), its tables and the queries the trends and
replay APIs run (docs/history.md)."""
