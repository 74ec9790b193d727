"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
import prewarm.store.schema
from sqlalchemy.dialects import mysql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('endpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('provider_kind', sa.String(length=64), nullable=True),
    sa.Column('created_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_endpoints')),
    sa.UniqueConstraint('name', name=op.f('uq_endpoints_name'))
    )
    op.create_table('leader',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=255), nullable=False),
    sa.Column('expires_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leader'))
    )
    op.create_table('actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('ts', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('verb', sa.String(length=32), nullable=False),
    sa.Column('requested', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mariadb').with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=False),
    sa.Column('reason', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mariadb').with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=True),
    sa.Column('result', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('retryable', sa.Boolean(), nullable=True),
    sa.Column('duration_ms', sa.Float(), nullable=True),
    sa.Column('command_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_actions_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_actions'))
    )
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.create_index('ix_actions_endpoint_ts', ['endpoint_id', 'ts'], unique=False)

    op.create_table('forecast_accuracy',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('issued_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('scored_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('mase', sa.Float(), nullable=True),
    sa.Column('pinball', sa.Float(), nullable=True),
    sa.Column('coverage_80', sa.Float(), nullable=True),
    sa.Column('coverage_95', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_forecast_accuracy_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_forecast_accuracy')),
    sa.UniqueConstraint('endpoint_id', 'issued_at', name='uq_forecast_accuracy_endpoint_issued')
    )
    op.create_table('forecasts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('issued_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('ds', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('step_s', sa.Integer(), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('mean', sa.Float(), nullable=False),
    sa.Column('lo_80', sa.Float(), nullable=True),
    sa.Column('hi_80', sa.Float(), nullable=True),
    sa.Column('lo_95', sa.Float(), nullable=True),
    sa.Column('hi_95', sa.Float(), nullable=True),
    sa.Column('extra', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mariadb').with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_forecasts_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_forecasts'))
    )
    with op.batch_alter_table('forecasts', schema=None) as batch_op:
        batch_op.create_index('ix_forecasts_endpoint_issued', ['endpoint_id', 'issued_at'], unique=False)

    op.create_table('holds',
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('workers', sa.Integer(), nullable=False),
    sa.Column('until', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('created_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_holds_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id', name=op.f('pk_holds'))
    )
    op.create_table('model_choices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('chosen_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=False),
    sa.Column('step_s', sa.Integer(), nullable=False),
    sa.Column('scores', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mariadb').with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_model_choices_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_choices'))
    )
    with op.batch_alter_table('model_choices', schema=None) as batch_op:
        batch_op.create_index('ix_model_choices_endpoint_chosen', ['endpoint_id', 'chosen_at'], unique=False)

    op.create_table('plans',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('issued_at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('horizon_end', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('model', sa.String(length=128), nullable=True),
    sa.Column('current', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_plans_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plans'))
    )
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.create_index('ix_plans_endpoint_current', ['endpoint_id', 'current'], unique=False)

    op.create_table('request_counts',
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('ts', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('bucket_s', sa.Integer(), server_default='60', nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('cold_starts', sa.Integer(), nullable=True),
    sa.Column('p50_ms', sa.Float(), nullable=True),
    sa.Column('p99_ms', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_request_counts_endpoint_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id', 'ts', name=op.f('pk_request_counts'))
    )
    op.create_table('plan_commands',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('plan_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('endpoint_id', sa.Integer(), nullable=False),
    sa.Column('at', prewarm.store.schema.UTCDateTime(), nullable=False),
    sa.Column('warm_workers', sa.Integer(), nullable=False),
    sa.Column('idle_timeout_s', sa.Float(), nullable=True),
    sa.Column('reason', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mariadb').with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('applied_at', prewarm.store.schema.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['endpoints.id'], name=op.f('fk_plan_commands_endpoint_id'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_plan_commands_plan_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_commands'))
    )
    with op.batch_alter_table('plan_commands', schema=None) as batch_op:
        batch_op.create_index('ix_plan_commands_endpoint_at', ['endpoint_id', 'at'], unique=False)
        batch_op.create_index('ix_plan_commands_plan', ['plan_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('plan_commands', schema=None) as batch_op:
        batch_op.drop_index('ix_plan_commands_plan')
        batch_op.drop_index('ix_plan_commands_endpoint_at')

    op.drop_table('plan_commands')
    op.drop_table('request_counts')
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_index('ix_plans_endpoint_current')

    op.drop_table('plans')
    with op.batch_alter_table('model_choices', schema=None) as batch_op:
        batch_op.drop_index('ix_model_choices_endpoint_chosen')

    op.drop_table('model_choices')
    op.drop_table('holds')
    with op.batch_alter_table('forecasts', schema=None) as batch_op:
        batch_op.drop_index('ix_forecasts_endpoint_issued')

    op.drop_table('forecasts')
    op.drop_table('forecast_accuracy')
    with op.batch_alter_table('actions', schema=None) as batch_op:
        batch_op.drop_index('ix_actions_endpoint_ts')

    op.drop_table('actions')
    op.drop_table('leader')
    op.drop_table('endpoints')
