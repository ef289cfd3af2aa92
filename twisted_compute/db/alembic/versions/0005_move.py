"""Moves: the ``migrations`` table (resize, cold and live migration,
evacuation) and the instance's migration context.

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("migration_context", sa.JSON(),
                                   nullable=True))
    op.create_table(
        "migrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("instance_uuid", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=255), nullable=False),
        sa.Column("migration_type", sa.String(length=32), nullable=False),
        sa.Column("source_compute", sa.String(length=255), nullable=True),
        sa.Column("source_node", sa.String(length=255), nullable=True),
        sa.Column("dest_compute", sa.String(length=255), nullable=True),
        sa.Column("dest_node", sa.String(length=255), nullable=True),
        sa.Column("dest_host", sa.String(length=255), nullable=True),
        sa.Column("old_instance_type_id", sa.Integer(), nullable=True),
        sa.Column("new_instance_type_id", sa.Integer(), nullable=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("memory_total", sa.BigInteger(), nullable=True),
        sa.Column("memory_processed", sa.BigInteger(), nullable=True),
        sa.Column("memory_remaining", sa.BigInteger(), nullable=True),
        sa.Column("disk_total", sa.BigInteger(), nullable=True),
        sa.Column("disk_processed", sa.BigInteger(), nullable=True),
        sa.Column("disk_remaining", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column("project_id", sa.String(length=255), nullable=True),
        sa.Column("cross_cell_move", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_migrations")),
        sa.UniqueConstraint("uuid", name=op.f("uq_migrations_uuid")),
    )
    op.create_index(op.f("ix_migrations_instance_uuid"), "migrations",
                    ["instance_uuid"], unique=False)
    op.create_index("ix_migrations_source_compute_status", "migrations",
                    ["source_compute", "status"], unique=False)
    op.create_index("ix_migrations_dest_compute_status", "migrations",
                    ["dest_compute", "status"], unique=False)
    op.create_index("ix_migrations_updated_at", "migrations",
                    ["updated_at"], unique=False)


def downgrade():
    op.drop_index("ix_migrations_updated_at", table_name="migrations")
    op.drop_index("ix_migrations_dest_compute_status",
                  table_name="migrations")
    op.drop_index("ix_migrations_source_compute_status",
                  table_name="migrations")
    op.drop_index(op.f("ix_migrations_instance_uuid"),
                  table_name="migrations")
    op.drop_table("migrations")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("migration_context")
