"""plans.need_now: the need at issue time, for hysteresis across cycles

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('need_now', sa.Integer(), nullable=True))
        batch_op.create_index('ix_plans_endpoint_issued', ['endpoint_id', 'issued_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_index('ix_plans_endpoint_issued')
        batch_op.drop_column('need_now')
