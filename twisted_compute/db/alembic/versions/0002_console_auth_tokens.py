"""Console auth tokens (their SHA-256, where they lead, their expiry).

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'console_auth_tokens',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('console_type', sa.String(length=255), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('port', sa.Integer(), nullable=False),
        sa.Column('tls_port', sa.Integer(), nullable=True),
        sa.Column('internal_access_path', sa.String(length=255),
                  nullable=True),
        sa.Column('instance_uuid', sa.String(length=36), nullable=False),
        sa.Column('expires', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_console_auth_tokens')),
        sa.UniqueConstraint('token_hash',
                            name=op.f('uq_console_auth_tokens_token_hash')))
    op.create_index(op.f('ix_console_auth_tokens_instance_uuid'),
                    'console_auth_tokens', ['instance_uuid'], unique=False)
    op.create_index(op.f('ix_console_auth_tokens_expires'),
                    'console_auth_tokens', ['expires'], unique=False)


def downgrade():
    op.drop_table('console_auth_tokens')
