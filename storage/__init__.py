"""Storage stage: ClickHouse schema, batch writer and read queries (server or embedded chDB)."""
