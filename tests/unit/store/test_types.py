"""UTCDateTime on a real SQLite file: aware in, UTC out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.exc import StatementError

from cardvault.store.types import UTCDateTime, utcnow

metadata = MetaData()
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=True),
)

IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
PACIFIC = dt.timezone(dt.timedelta(hours=-8))


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'types.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def store_and_load(engine: Engine, value: dt.datetime | None) -> dt.datetime | None:
    with engine.begin() as conn:
        row_id = conn.execute(insert(events).values(at=value)).inserted_primary_key[0]
    with engine.connect() as conn:
        loaded: dt.datetime | None = conn.scalar(select(events.c.at).where(events.c.id == row_id))
    return loaded


def test_other_zone_comes_back_as_same_instant_in_utc(engine: Engine) -> None:
    sent = dt.datetime(2024, 3, 1, 9, 15, 30, 123456, tzinfo=IST)

    loaded = store_and_load(engine, sent)

    assert loaded == sent
    assert loaded is not None
    assert loaded.tzinfo == dt.UTC
    assert loaded.utcoffset() == dt.timedelta(0)
    assert (loaded.year, loaded.month, loaded.day, loaded.hour, loaded.minute) == (
        2024,
        3,
        1,
        3,
        45,
    )
    assert loaded.microsecond == 123456


def test_utc_round_trip(engine: Engine) -> None:
    sent = utcnow()

    loaded = store_and_load(engine, sent)

    assert loaded == sent
    assert loaded is not None
    assert loaded.tzinfo == dt.UTC


def test_none_round_trip(engine: Engine) -> None:
    assert store_and_load(engine, None) is None


def test_naive_datetime_is_refused(engine: Engine) -> None:
    with pytest.raises((ValueError, StatementError)), engine.begin() as conn:
        conn.execute(insert(events).values(at=dt.datetime(2024, 3, 1, 9, 15)))

    with engine.connect() as conn:
        assert conn.scalar(select(events.c.id)) is None


def test_naive_datetime_is_refused_in_a_query(engine: Engine) -> None:
    with pytest.raises((ValueError, StatementError)), engine.connect() as conn:
        conn.execute(select(events).where(events.c.at < dt.datetime(2024, 3, 1)))


def test_order_and_comparison_follow_instants_across_zones(engine: Engine) -> None:
    # 10:00+05:30 is 04:30Z, earlier than 00:00-08:00 (08:00Z) though "10:00" > "00:00"
    early = dt.datetime(2024, 3, 1, 10, 0, tzinfo=IST)
    late = dt.datetime(2024, 3, 1, 0, 0, tzinfo=PACIFIC)
    with engine.begin() as conn:
        conn.execute(insert(events), [{"id": 1, "at": late}, {"id": 2, "at": early}])

    with engine.connect() as conn:
        ordered = conn.scalars(select(events.c.id).order_by(events.c.at)).all()
        between = conn.scalars(
            select(events.c.id).where(events.c.at > dt.datetime(2024, 3, 1, 6, 0, tzinfo=dt.UTC))
        ).all()

    assert ordered == [2, 1]
    assert between == [1]
