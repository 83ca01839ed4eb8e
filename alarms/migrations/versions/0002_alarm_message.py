"""Alarms keep their event's message key and parameters, so each screen shows the alarm in its
own language (issue 9's catalogue), not only the producer's title.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.add_column(sa.Column("msg", sa.String(200)))
        batch.add_column(sa.Column("params", sa.Text))  # JSON of the event's params (bounded there)


def downgrade() -> None:
    with op.batch_alter_table("alarms") as batch:
        batch.drop_column("params")
        batch.drop_column("msg")
