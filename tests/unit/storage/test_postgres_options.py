"""Rallypoint's settings in a postgresql:// storage URL: parsed, checked, kept from the driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from rallypoint.errors import ConfigError
from rallypoint.storage.factory import open_event_store
from rallypoint.storage.postgres.options import PostgresOptions, retry_attempts, split_url
from rallypoint.storage.postgres.pool import RetryPolicy


def test_our_parameters_are_taken_out_and_the_driver_keeps_its_own() -> None:
    dsn, options = split_url("postgresql://u:p%40ss@db:5432/rp?sslmode=require&pool_max=8&retry_s=30&postgis=off")
    assert dsn == "postgresql://u:p%40ss@db:5432/rp?sslmode=require"
    assert options == PostgresOptions(pool_max=8, retry_s=30.0, postgis="off")


def test_without_parameters_the_url_is_unchanged_and_the_defaults_apply() -> None:
    assert split_url("postgresql://db/rp") == ("postgresql://db/rp", PostgresOptions())


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("pool_max=0", "pool_max must be between 1 and 100"),
        ("pool_max=many", "pool_max must be a whole number"),
        ("retry_s=-1", "retry_s must be between 0 and 3600"),
        ("retry_s=nan", "retry_s must be between 0 and 3600"),
        ("retry_s=soon", "retry_s must be a number of seconds"),
        ("postgis=yes", "postgis must be one of auto, require, off"),
        ("pool_max=2&pool_max=3", "pool_max is given twice"),
    ],
)
def test_bad_values_are_config_errors_naming_the_parameter_not_the_password(query: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        open_event_store(f"postgresql://u:secret@db/rp?{query}", Path("/data"))
    assert "secret" not in str(info.value)


def test_retry_s_is_a_budget_of_pauses() -> None:
    # The default policy (8 tries, 50 ms doubling to 2 s) pauses about 5 s in all.
    assert retry_attempts(5.0) == RetryPolicy().attempts == 8
    assert retry_attempts(0) == 1  # no retry
    assert sum(RetryPolicy.lasting(30).delays()) >= 30
    assert sum(RetryPolicy.lasting(30).delays()[:-1]) < 30
