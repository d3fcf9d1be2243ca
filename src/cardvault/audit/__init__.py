"""The append-only audit log."""

from cardvault.audit.services import AuditBuffer, AuditRecord, write_audit

__all__ = ["AuditBuffer", "AuditRecord", "write_audit"]
