"""The hypervisor's uptime as its agent reports it (shown from
microversion 2.88 and by ``/os-hypervisors/{id}/uptime`` before).

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("compute_nodes") as batch:
        batch.add_column(sa.Column("uptime", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("compute_nodes") as batch:
        batch.drop_column("uptime")
