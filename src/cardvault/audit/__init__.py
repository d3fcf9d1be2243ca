"""The append-only audit log."""

from cardvault.audit.services import Actor, AuditBuffer, AuditRecord, bind_audit, write_audit

__all__ = ["Actor", "AuditBuffer", "AuditRecord", "bind_audit", "write_audit"]
