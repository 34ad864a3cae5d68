"""The review store on SQL: one implementation, two dialects (SQLite, PostgreSQL)."""
