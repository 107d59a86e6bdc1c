"""
pretix' test settings. For SQLite the test database lives in a file and transactions take the write lock when they
start, so that the concurrency tests can run several connections that wait for each other instead of deadlocking.
"""
import os

from pretix.testutils.settings import *  # noqa: F401,F403
from pretix.testutils.settings import DATA_DIR, DATABASES

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLITE_TEST_DB names a file that outlives the run, for pytest's --reuse-db while developing.
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("SQLITE_TEST_DB") or os.path.join(DATA_DIR, "test.sqlite3")}
    DATABASES["default"].setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 30})
elif os.environ.get("PG_TEST_DB"):
    # Several test runs on one PostgreSQL server at once need their own throwaway database each.
    DATABASES["default"]["TEST"] = {"NAME": os.environ["PG_TEST_DB"]}

# The test database is built by pretix' and the plugin's real migrations, as pretix' CI does, so the tests run on
# the schema a real installation has, including the pool's counting triggers (tests/test_migrations.py).
MIGRATION_MODULES = {}

# tests/test_browser.py compiles pretix' SCSS for real pages; keep the compiled files out of the installed pretix.
COMPRESS_ROOT = os.path.join(DATA_DIR, "compress")
