"""static_guard_judgements: every static-guard judgement, so that explain --at and the report
show the one in force at any time (static_guards keeps only the last); filled with the last
judgement of each endpoint

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
import prewarm.store.schema

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

JSON_TEXT = sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mariadb').with_variant(mysql.MEDIUMTEXT(), 'mysql')


def upgrade() -> None:
    op.create_table('static_guard_judgements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('judged_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('span_s', sa.Float(), nullable=True),
    sa.Column('setting', JSON_TEXT, nullable=True),
    sa.Column('smoothing_s', sa.Float(), nullable=True),
    sa.Column('evidence', JSON_TEXT, nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_static_guard_judgements_endpoint_id'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_static_guard_judgements'))
    )
    with op.batch_alter_table('static_guard_judgements', schema=None) as batch_op:
        batch_op.create_index('ix_static_guard_judgements_endpoint_judged', ['endpoint_id', 'judged_at'], unique=False)
    # The judgements made before this revision: only each endpoint's last was kept.
    op.execute(
        "INSERT INTO static_guard_judgements (endpoint_id, judged_at, mode, span_s, setting, smoothing_s, evidence) "
        "SELECT endpoint_id, judged_at, mode, span_s, setting, smoothing_s, evidence FROM static_guards "
        "WHERE judged_at IS NOT NULL")


def downgrade() -> None:
    # The table and its index together (MariaDB refuses to drop an index its foreign key uses).
    op.drop_table('static_guard_judgements')
