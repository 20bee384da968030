"""gunicorn entry point for the benchmark's privacyIDEA (config from PRIVACYIDEA_CONFIGFILE)."""
import os

from sqlalchemy import event
from sqlalchemy.engine import Engine

from privacyidea.app import create_app

if os.environ.get("PI_BENCH_SQLITE_SYNC"):
    # setup.sh --sqlite same: the durability tweestap's SQLite store runs with
    # (WAL, set in the file, and synchronous=NORMAL, which is per connection).
    @event.listens_for(Engine, "connect")
    def _sqlite_sync(dbapi_connection, _record):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA synchronous=" + os.environ["PI_BENCH_SQLITE_SYNC"])
        cur.close()


application = create_app(config_name="production",
                         config_file=os.environ["PRIVACYIDEA_CONFIGFILE"], silent=True)
