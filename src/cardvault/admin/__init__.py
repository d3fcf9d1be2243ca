"""The management API (/organizations/…)."""
