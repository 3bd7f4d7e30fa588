"""SQLAlchemy 2 schema, SQL stores and Alembic migrations."""
