"""pgmlops 0.2.0: feature store, registry, predictions, experiments, drift, embeddings.

Revision ID: pgmlops_0_2_0
Revises: pgmlops_0_1_0
"""

from pgmlops.alembic_support import install_version

revision = "pgmlops_0_2_0"
down_revision = "pgmlops_0_1_0"
branch_labels = None
depends_on = None


def upgrade() -> None:
    install_version("0.2.0")


def downgrade() -> None:
    raise NotImplementedError("pgmlops does not support downgrades")
