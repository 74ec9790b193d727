"""tuned_policies: knobs the auto-tuner moved, kept across restarts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
import prewarm.store.schema
from sqlalchemy.dialects import mysql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tuned_policies',
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('knobs', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mariadb').with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_tuned_policies_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id', name=op.f('pk_tuned_policies'))
    )


def downgrade() -> None:
    op.drop_table('tuned_policies')
