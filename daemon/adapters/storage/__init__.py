"""The database adapter: engine, schema, migrations and repositories."""
