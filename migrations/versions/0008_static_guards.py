"""static_guards: last week's best static setting per endpoint (the static guard, issue 10)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
import prewarm.store.schema

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('static_guards',
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('judged_at', prewarm.store.schema.UTCDateTime(), nullable=True),
    sa.Column('span_s', sa.Float(), nullable=True),
    sa.Column('setting', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mariadb').with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=True),
    sa.Column('attempted_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_static_guards_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id', name=op.f('pk_static_guards'))
    )


def downgrade() -> None:
    op.drop_table('static_guards')
