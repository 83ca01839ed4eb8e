"""hist_gaps: spans whose stream entries were trimmed before the writer read them (both databases:
a small plain table, never partitioned).

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
        "hist_gaps",
        sa.Column("stream", sa.String(16), primary_key=True),
        sa.Column("from_ts", sa.BigInteger, primary_key=True),
        sa.Column("to_ts", sa.BigInteger, nullable=False),
        sa.Column("entries", sa.BigInteger),
        sa.Column("detected_ts", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_hist_gaps_to", "hist_gaps", ["to_ts"])


def downgrade() -> None:
    op.drop_table("hist_gaps")
