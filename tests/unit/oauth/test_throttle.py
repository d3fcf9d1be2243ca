"""Throttling of failed client authentication: three sliding one-minute windows."""

from __future__ import annotations

import pytest

from cardvault.oauth.throttle import FailureThrottle

PAIR, PER_IP, PER_CLIENT = 3, 5, 7
T0 = 1_000_000.0


@pytest.fixture
def throttle() -> FailureThrottle:
    return FailureThrottle(per_client_ip=PAIR, per_ip=PER_IP, per_client=PER_CLIENT)


def test_fresh_caller_is_not_throttled(throttle: FailureThrottle) -> None:
    assert throttle.retry_after("cv-a", "10.0.0.1", T0) == 0


def test_pair_limit(throttle: FailureThrottle) -> None:
    for i in range(PAIR - 1):
        throttle.failure("cv-a", "10.0.0.1", T0 + i)
    assert throttle.retry_after("cv-a", "10.0.0.1", T0 + 2.5) == 0

    throttle.failure("cv-a", "10.0.0.1", T0 + PAIR - 1)

    wait = throttle.retry_after("cv-a", "10.0.0.1", T0 + PAIR - 1)
    assert 0 < wait <= 60
    assert wait == 58  # the oldest failure (T0) leaves the window at T0 + 60


def test_pair_limit_ends_sixty_seconds_after_oldest_failure(throttle: FailureThrottle) -> None:
    for i in range(PAIR):
        throttle.failure("cv-a", "10.0.0.1", T0 + i)

    assert throttle.retry_after("cv-a", "10.0.0.1", T0 + 59.5) == 1
    assert throttle.retry_after("cv-a", "10.0.0.1", T0 + 60) == 0
    assert throttle.retry_after("cv-a", "10.0.0.1", T0 + 3600) == 0


def test_window_slides(throttle: FailureThrottle) -> None:
    """Only the last ``limit`` failures count: a new failure keeps the caller waiting."""
    for i in range(PAIR):
        throttle.failure("cv-a", "10.0.0.1", T0 + 10 * i)  # T0, T0+10, T0+20
    throttle.failure("cv-a", "10.0.0.1", T0 + 61)

    # the failures at T0+10, T0+20 and T0+61 are within a minute of T0+65
    assert throttle.retry_after("cv-a", "10.0.0.1", T0 + 65) == 5
    assert throttle.retry_after("cv-a", "10.0.0.1", T0 + 70) == 0


def test_pair_limit_does_not_touch_other_pairs(throttle: FailureThrottle) -> None:
    for i in range(PAIR):
        throttle.failure("cv-a", "10.0.0.1", T0 + i)

    assert throttle.retry_after("cv-a", "10.0.0.2", T0 + 5) == 0
    assert throttle.retry_after("cv-b", "10.0.0.1", T0 + 5) == 0


def test_per_ip_limit_across_client_ids(throttle: FailureThrottle) -> None:
    for i in range(PER_IP):
        throttle.failure(f"cv-spray{i}", "10.0.0.9", T0 + i)

    wait = throttle.retry_after("cv-new", "10.0.0.9", T0 + PER_IP)
    assert 0 < wait <= 60
    assert throttle.retry_after("cv-new", "10.0.0.10", T0 + PER_IP) == 0
    assert throttle.retry_after("cv-new", "10.0.0.9", T0 + 60) == 0


def test_per_client_limit_across_addresses(throttle: FailureThrottle) -> None:
    for i in range(PER_CLIENT):
        throttle.failure("cv-victim", f"192.0.2.{i}", T0 + i)

    wait = throttle.retry_after("cv-victim", "198.51.100.1", T0 + PER_CLIENT)
    assert 0 < wait <= 60
    assert throttle.retry_after("cv-other", "198.51.100.1", T0 + PER_CLIENT) == 0
    assert throttle.retry_after("cv-victim", "198.51.100.1", T0 + 60) == 0


def _attack(throttle: FailureThrottle, client: str, ip: str, start: float) -> None:
    """Exhaust the per-client limit of ``client`` and the per-ip limit of ``ip`` elsewhere."""
    for i in range(PER_CLIENT):
        throttle.failure(client, f"203.0.113.{i}", start + i * 0.1)
    for i in range(PER_IP):
        throttle.failure(f"cv-attacker{i}", ip, start + i * 0.1)


def test_trusted_pair_is_not_locked_out_by_others(throttle: FailureThrottle) -> None:
    throttle.success("cv-good", "10.0.0.1", T0)
    _attack(throttle, "cv-good", "10.0.0.1", T0 + 10)
    now = T0 + 12

    assert throttle.retry_after("cv-good", "10.0.0.1", now) == 0
    # the limits do hold for everyone else
    assert throttle.retry_after("cv-good", "10.0.0.2", now) > 0
    assert throttle.retry_after("cv-other", "10.0.0.1", now) > 0


def test_trusted_pair_is_still_held_to_its_own_limit(throttle: FailureThrottle) -> None:
    throttle.success("cv-good", "10.0.0.1", T0)
    for i in range(PAIR):
        throttle.failure("cv-good", "10.0.0.1", T0 + 10 + i)

    wait = throttle.retry_after("cv-good", "10.0.0.1", T0 + 10 + PAIR)
    assert 0 < wait <= 60


def test_trust_lasts_an_hour(throttle: FailureThrottle) -> None:
    throttle.success("cv-good", "10.0.0.1", T0)
    later = T0 + 3600 + 10
    _attack(throttle, "cv-good", "10.0.0.1", later)

    assert throttle.retry_after("cv-good", "10.0.0.1", later + 2) > 0


def test_success_clears_the_pair_failures(throttle: FailureThrottle) -> None:
    for i in range(PAIR - 1):
        throttle.failure("cv-a", "10.0.0.1", T0 + i)
    throttle.success("cv-a", "10.0.0.1", T0 + 5)
    throttle.failure("cv-a", "10.0.0.1", T0 + 6)

    assert throttle.retry_after("cv-a", "10.0.0.1", T0 + 7) == 0

    for i in range(PAIR - 1):
        throttle.failure("cv-a", "10.0.0.1", T0 + 8 + i)
    assert throttle.retry_after("cv-a", "10.0.0.1", T0 + 8 + PAIR) > 0


def test_success_clears_only_its_own_pair(throttle: FailureThrottle) -> None:
    for i in range(PAIR):
        throttle.failure("cv-a", "10.0.0.2", T0 + i)
    throttle.success("cv-a", "10.0.0.1", T0 + 5)

    assert throttle.retry_after("cv-a", "10.0.0.2", T0 + 6) > 0
