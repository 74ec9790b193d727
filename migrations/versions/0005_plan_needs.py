"""plan_needs and plans.confirmed_at: an unchanged re-plan is confirmed, not rewritten

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa
import prewarm.store.schema

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('plan_needs',
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('need', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_plan_needs_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id', 'at', name=op.f('pk_plan_needs'))
    )
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confirmed_at', prewarm.store.schema.UTCDateTime(), nullable=True))
    # The needs recorded so far (on plans) carry over, so hysteresis holds across the upgrade.
    op.execute("INSERT INTO plan_needs (endpoint_id, at, need) "
               "SELECT endpoint_id, issued_at, MAX(need_now) FROM plans WHERE need_now IS NOT NULL "
               "GROUP BY endpoint_id, issued_at")


def downgrade() -> None:
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('confirmed_at')
    op.drop_table('plan_needs')
