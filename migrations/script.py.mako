"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from pgmlops.alembic_support import install_version

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    install_version("X.Y.Z")


def downgrade() -> None:
    raise NotImplementedError("pgmlops does not support downgrades")
