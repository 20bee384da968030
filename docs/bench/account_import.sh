#!/bin/bash
# Issue 16 figure: `tweestap user import` of a 100,000-row CSV (hashes of four
# formats, copied as they are: nothing is hashed), into a fresh SQLite database and,
# when psql reaches postgres://postgres@127.0.0.1:5432, a fresh PostgreSQL one. Each
# database: a dry run, the import, and the same file again (all unchanged).
# N=... sets the number of rows.
set -e
cd "$(dirname "$0")/../.."
B=target/release/tweestap; D=$(mktemp -d /tmp/tweestap-bench.XXXX); N=${N:-100000}
python3 - "$D/people.csv" "$N" <<'PY'
import base64, hashlib, os, sys
b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
pw = b"violet harbour lantern 42"
salt = os.urandom(16)
pbkdf2 = "$pbkdf2-sha256$i=1000,l=32$%s$%s" % (b64(salt), b64(hashlib.pbkdf2_hmac("sha256", pw, salt, 1000)))
scrypt = "$scrypt$ln=10,r=8,p=1$%s$%s" % (b64(salt), b64(hashlib.scrypt(pw, salt=salt, n=1024, r=8, p=1, dklen=32)))
# OpenBSD's bcrypt test vector ("U*U"), as PHP ($2y$) and others ($2b$) write it.
bcrypt = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
hashes = [pbkdf2, scrypt, bcrypt, bcrypt.replace("$2a$", "$2y$", 1), ""]
roles = ["user"] * 18 + ["support", "admin"]
with open(sys.argv[1], "w") as f:
    f.write("email,name,role,password_hash,invite\n")
    for i in range(int(sys.argv[2])):
        f.write('persoon%06d@example.org,"Persoon %d, Afdeling %d",%s,"%s",false\n'
                % (i, i, i % 40, roles[i % 20], hashes[i % 5]))
PY
ls -l "$D/people.csv"
run() { # label, data dir, extra args
  local label=$1 dir=$2; shift 2
  /usr/bin/time -f "$label: %e s wall, %U s user, %M KB peak" \
    $B --data-dir "$dir" user import "$D/people.csv" "$@" | head -1
}
export TWEESTAP_LOG=warn
mkdir -p "$D/sqlite"
run "sqlite dry run" "$D/sqlite" --dry-run
run "sqlite import" "$D/sqlite"
run "sqlite again" "$D/sqlite"
if psql -q postgres://postgres@127.0.0.1:5432/postgres -c 'DROP DATABASE IF EXISTS tweestap_bench' \
   -c 'CREATE DATABASE tweestap_bench' 2>/dev/null; then
  export TWEESTAP_DATABASE_URL=postgres://postgres@127.0.0.1:5432/tweestap_bench
  mkdir -p "$D/pg"
  run "postgres dry run" "$D/pg" --dry-run
  run "postgres import" "$D/pg"
  run "postgres again" "$D/pg"
  unset TWEESTAP_DATABASE_URL
  psql -q postgres://postgres@127.0.0.1:5432/postgres -c 'DROP DATABASE tweestap_bench'
fi
rm -rf "$D"
