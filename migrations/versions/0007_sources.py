"""source_sync and source_missing: metrics sources keep the store filled (`prewarm sync`)

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa
import prewarm.store.schema

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('source_sync',
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('watermark', prewarm.store.schema.UTCDateTime(), nullable=True),
    sa.Column('first_minute', prewarm.store.schema.UTCDateTime(), nullable=True),
    sa.Column('synced_at', prewarm.store.schema.UTCDateTime(), nullable=True),
    sa.Column('attempted_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_source_sync_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id', name=op.f('pk_source_sync'))
    )
    op.create_table('source_missing',
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('ts', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_source_missing_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id', 'ts', name=op.f('pk_source_missing'))
    )


def downgrade() -> None:
    op.drop_table('source_missing')
    op.drop_table('source_sync')
