"""Alarm management to ISA-18.2 / IEC 62682 (docs/alarms.md).

    states     the pure state machine (no I/O): conditions, operator actions, hidden states
    config     config/alarms.yaml and the alarm actions of config/roles.yaml, validated (pydantic)
    rules      events -> alarm keys and priorities (the mapping of config/alarms.yaml)
    schema     the SQL tables (SQLAlchemy Core); changed only through migrations/ (Alembic)
    db         engines, migrations at start, the SQL store (events, actions, queries)
    kpis       operator-load figures (pure: rates, flood, top contributors, EEMUA level)
    service    the part `app.py --only alarms`: stream consumer group -> SQL -> live channel
"""
