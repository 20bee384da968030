"""Seed a fresh privacyIDEA database for the side-by-side benchmark (issue 19).

Runs inside the privacyIDEA venv with PRIVACYIDEA_CONFIGFILE set. Through the
app context rather than the REST API, because 2,000 enrolments over HTTP (each
with its audit row and signature) take minutes; this takes seconds.

Usage: python enroll.py <passwd-file> <tokens-json-out> <n> <realm>
"""
import base64
import binascii
import json
import os
import secrets
import sys

from sqlalchemy import event
from sqlalchemy.engine import Engine

from privacyidea.app import create_app
from privacyidea.lib.config import set_privacyidea_config
from privacyidea.lib.realm import set_realm
from privacyidea.lib.resolver import save_resolver
from privacyidea.lib.token import init_token
from privacyidea.lib.user import User
from privacyidea.models import db


@event.listens_for(Engine, "connect")
def _fast_seed(dbapi_connection, _record):
    # Only this seeding process: a throw-away database need not survive a
    # crash mid-seed, and init_token commits several times per token (about
    # 200 ms a token with fsyncs here). The server runs on privacyIDEA's
    # defaults.
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.execute("PRAGMA journal_mode=MEMORY")
    cur.close()


def main():
    passwd_file, out_file, n, realm = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    users = [f"u{i:05d}" for i in range(n)]
    # A passwd-format flat file, as in privacyIDEA's quick start; the password
    # field is unused because /validate/check here asks for the OTP only.
    with open(passwd_file, "w") as f:
        for i, login in enumerate(users):
            f.write(f"{login}:x:{10000 + i}:{10000 + i}:{login}:/home/{login}:/bin/false\n")

    app = create_app(config_name="production", config_file=os.environ["PRIVACYIDEA_CONFIGFILE"],
                     silent=True)
    tokens = []
    with app.app_context():
        # The load rotates wrong codes over the users; with the default
        # maxfail (10) every token would lock after a few seconds and later
        # checks would stop early, which is not the full check we compare.
        set_privacyidea_config("DefaultMaxFailCount", "1000000000")
        save_resolver({"resolver": "benchusers", "type": "passwdresolver", "fileName": passwd_file})
        set_realm(realm, [{"name": "benchusers"}])
        for login in users:
            raw = secrets.token_bytes(20)
            init_token({"type": "totp", "otpkey": binascii.hexlify(raw).decode(), "genkey": 0,
                        "timeStep": 30, "otplen": 6, "hashlib": "sha1",
                        "serial": f"TOTP_{login}"},
                       user=User(login, realm))
            tokens.append({"user": login, "realm": realm,
                           "secret_base32": base64.b32encode(raw).decode()})
        db.session.commit()
    with open(out_file, "w") as f:
        json.dump(tokens, f)


if __name__ == "__main__":
    main()
