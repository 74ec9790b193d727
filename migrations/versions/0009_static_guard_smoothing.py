"""static_guards.smoothing_s: the smoothing the judgement chose on the endpoint's trailing week

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('static_guards', schema=None) as batch_op:
        batch_op.add_column(sa.Column('smoothing_s', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('static_guards', schema=None) as batch_op:
        batch_op.drop_column('smoothing_s')
