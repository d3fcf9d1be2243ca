"""Bulk enrolment of network tokens from CSV files: upload, background chunks, results."""
