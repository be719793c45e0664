"""The PostgreSQL test infrastructure: q3c and pgsphere work, each test gets its own database.

Needs the PostgreSQL test server (`make pg-setup`): skips without it, fails under CI=true.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.postgres


def _scalar(url: str, query: str) -> object:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar_one()
    finally:
        engine.dispose()


def _tables_and_database(url: str) -> tuple[str, list[str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            name = conn.execute(sa.text("SELECT current_database()")).scalar_one()
        return name, sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_url_is_sqlalchemy_psycopg(pg_url: str) -> None:
    url = sa.make_url(pg_url)
    assert url.drivername == "postgresql+psycopg"
    assert url.database is not None
    assert url.database.startswith("firstlight_test_")


def test_q3c_distance(pg_url: str) -> None:
    distance = _scalar(pg_url, "SELECT q3c_dist(0, 0, 1, 0)")
    assert distance == pytest.approx(1.0, abs=1e-9)


def test_pgsphere_containment(pg_url: str) -> None:
    assert _scalar(pg_url, "SELECT scircle '<(0d,0d),1d>' @> spoint '(0.5d,0d)'") is True
    assert _scalar(pg_url, "SELECT scircle '<(0d,0d),1d>' @> spoint '(2d,0d)'") is False


def test_dachs_compat_operator(pg_url: str) -> None:
    # The GAVO DaCHS `@` operators, the ones the setup patch changes (pgsphere issue #85).
    assert _scalar(pg_url, "SELECT spoint '(0.1d,0.1d)' @ smoc '3/0-767'") is True
    assert _scalar(pg_url, "SELECT spoint '(0.1d,0.1d)' @ smoc '3/700'") is False
    assert _scalar(pg_url, "SELECT 100::bigint @ smoc '3/0-767'") is True


def test_databases_are_fresh_and_distinct(pg_url: str, pg_template: str) -> None:
    from tests.postgres import database_from_template, pg_server_url

    name, tables = _tables_and_database(pg_url)
    assert tables == []
    with database_from_template(pg_server_url(), pg_template) as other_url:
        other_name, other_tables = _tables_and_database(other_url)
        assert other_tables == []
        assert other_name != name
        # A table made in one is not seen in the other.
        engine = sa.create_engine(pg_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE probe (id integer)"))
        finally:
            engine.dispose()
        assert _tables_and_database(pg_url)[1] == ["probe"]
        assert _tables_and_database(other_url)[1] == []
