"""The EC2 API's tables: access keys (noauth) and RunInstances client
tokens.

Revision ID: 0006_ec2
Revises: 0005 (0005_move)
"""
from alembic import op
import sqlalchemy as sa

revision = "0006_ec2"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ec2_credentials',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('access', sa.String(length=64), nullable=False),
        sa.Column('secret', sa.String(length=128), nullable=False),
        sa.Column('user_id', sa.String(length=255), nullable=False),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ec2_credentials')),
        sa.UniqueConstraint('access', name=op.f('uq_ec2_credentials_access')))
    op.create_index(op.f('ix_ec2_credentials_project_id'),
                    'ec2_credentials', ['project_id'], unique=False)
    op.create_table(
        'ec2_client_tokens',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.Column('project_id', sa.String(length=255), nullable=False),
        sa.Column('client_token', sa.String(length=64), nullable=False),
        sa.Column('reservation_id', sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ec2_client_tokens')),
        sa.UniqueConstraint('project_id', 'client_token',
                            name=op.f('uq_ec2_client_tokens_project_id_'
                                      'client_token')))


def downgrade():
    op.drop_table('ec2_client_tokens')
    op.drop_index(op.f('ix_ec2_credentials_project_id'),
                  table_name='ec2_credentials')
    op.drop_table('ec2_credentials')
