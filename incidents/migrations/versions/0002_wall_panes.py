"""The incident pane of each wall screen ("send to wall", issue 11 points 3-4).

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
    op.create_table(
        "incident_wall_panes",
        sa.Column("wall", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("incident_wall_panes")
