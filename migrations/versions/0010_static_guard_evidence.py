"""static_guards.evidence: what the judgement decided on (the verdict, the best static setting
at the target on the trailing week, how the plan alone did there), for the operator

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('static_guards', schema=None) as batch_op:
        batch_op.add_column(sa.Column(
            'evidence', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mariadb').with_variant(mysql.MEDIUMTEXT(), 'mysql'),
            nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('static_guards', schema=None) as batch_op:
        batch_op.drop_column('evidence')
