"""readiness: measured times from a scale-out to ready capacity

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
import prewarm.store.schema

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('readiness',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('started_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('target', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('ready', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_readiness_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_readiness'))
    )
    op.create_index('ix_readiness_endpoint_started', 'readiness', ['endpoint_id', 'started_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_readiness_endpoint_started', table_name='readiness')
    op.drop_table('readiness')
