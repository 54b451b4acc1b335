"""pgmlops 0.1.0: foundation (schema mlops, ledger, roles, version/info, alerts).

Revision ID: pgmlops_0_1_0
Revises:
"""

from pgmlops.alembic_support import install_version

revision = "pgmlops_0_1_0"
down_revision = None
branch_labels = ("pgmlops",)
depends_on = None


def upgrade() -> None:
    install_version("0.1.0")


def downgrade() -> None:
    raise NotImplementedError("pgmlops does not support downgrades")
