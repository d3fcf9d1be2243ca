"""The append-only audit log."""

from cardvault.audit.services import AuditBuffer, AuditRecord, bind_audit, write_audit

__all__ = ["AuditBuffer", "AuditRecord", "bind_audit", "write_audit"]
