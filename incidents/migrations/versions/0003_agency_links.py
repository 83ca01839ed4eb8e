"""Agency links kept in SQL, so one can be revoked before it expires (security review).

Links handed out before this revision have no row: they are refused (404) from now on, and the
commander makes a new one (a link lives a day at most).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_agency_links",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("agency", sa.String(8), nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("expires_ts", sa.BigInteger, nullable=False),
        sa.Column("revoked_ts", sa.BigInteger),
        sa.Column("revoked_by", sa.String(80)),
    )
    op.create_index("ix_incident_agency_links_incident", "incident_agency_links", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_incident_agency_links_incident", table_name="incident_agency_links")
    op.drop_table("incident_agency_links")
