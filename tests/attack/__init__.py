"""Attack suites: each defect class tried against real servers on SQLite and PostgreSQL."""
