"""PostgreSQL: how cardvault scales past one machine. Writes on SQLAlchemy's pooled
connections, reads on a connection of each thread's own whose hot statements are
prepared by the server (:mod:`cardvault.store.postgresql.driver`), and ``NOTIFY`` to
wake the other nodes (:mod:`cardvault.store.postgresql.listen`)."""

from cardvault.store.postgresql.backend import PG_CONNECT_ARGS, POOL_TIMEOUT, PostgreSQLBackend

__all__ = ["PG_CONNECT_ARGS", "POOL_TIMEOUT", "PostgreSQLBackend"]
