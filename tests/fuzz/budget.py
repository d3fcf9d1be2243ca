"""How long the fuzz suites run: one bounded round by default, rounds until a deadline
when ``CARDVAULT_FUZZ_MINUTES`` is set (``make fuzz``), and what they ran."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

# Shares of one backend's time: the sweep of every operation, the stateful scenarios,
# the OAuth endpoints fuzzed through forms holding real credentials.
SHARES = {"operations": 0.6, "stateful": 0.25, "oauth": 0.15}
BACKENDS = 2


@dataclass(frozen=True)
class Budget:
    """``examples`` per operation and generation mode in one round; ``seconds`` for one
    part on one backend, or ``None`` for a single round (the bounded run of ``make test``)."""

    examples: int
    seconds: float | None

    @classmethod
    def from_env(cls, part: str) -> Budget:
        examples = int(os.environ.get("CARDVAULT_FUZZ_EXAMPLES", "4"))
        minutes = os.environ.get("CARDVAULT_FUZZ_MINUTES")
        if not minutes:
            return cls(examples, None)
        return cls(examples, float(minutes) * 60 / BACKENDS * SHARES[part])

    def rounds(self) -> RoundClock:
        return RoundClock(self.seconds)


@dataclass
class RoundClock:
    """Yields round numbers: once without a deadline, else until the deadline has passed."""

    seconds: float | None
    start: float = field(default_factory=time.monotonic)

    def __iter__(self):  # type: ignore[no-untyped-def]
        n = 0
        while n == 0 or (self.seconds is not None and self.remaining() > 0):
            yield n
            n += 1

    def remaining(self) -> float:
        return float("inf") if self.seconds is None else self.seconds - self.elapsed()

    def elapsed(self) -> float:
        return time.monotonic() - self.start


@dataclass
class Tally:
    """Cases run by the fuzz suites in this session, for the closing summary."""

    cases: dict[str, int] = field(default_factory=dict)
    start: float = field(default_factory=time.monotonic)

    def add(self, part: str, n: int = 1) -> None:
        self.cases[part] = self.cases.get(part, 0) + n

    @property
    def total(self) -> int:
        return sum(self.cases.values())


TALLY = Tally()
