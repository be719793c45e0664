#!/usr/bin/env bash
# Make the test PostgreSQL ready: server up, q3c and pgsphere installed and creatable.
#
# Idempotent and quick when everything is in place (a few psql calls). Steps:
#   1. find the server: FIRSTLIGHT_TEST_PG_URL, else postgresql://postgres@127.0.0.1:5432/postgres;
#      if it does not answer and a local cluster exists, start it and wait a few seconds.
#      Still down: CI=true -> exit 1; otherwise print a note and exit 0 (the tests skip).
#   2. install postgresql-<major>-q3c / -pgsphere when their control files are missing
#      (local server only; apt-get update once, then a quiet noninteractive install).
#   3. if CREATE EXTENSION pg_sphere fails with pgsphere issue #85 ("commutator operator @> is
#      already the commutator of operator <@"), drop the COMMUTATOR/NEGATOR attributes of the
#      operators in the "backwards-compatible operators for GAVO DaCHS" block of
#      pg_sphere--1.2.0.sql (a marker comment on line 1, the shipped file kept as .orig).
#   4. check both extensions create in a scratch database, then drop it.
# One line per action taken. Needs only bash, the PostgreSQL client tools, sed/awk, apt-get.
set -euo pipefail

URL="${FIRSTLIGHT_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
URL="${URL/postgresql+psycopg:/postgresql:}" # accept an SQLAlchemy URL too
MARKER="-- firstlight: COMMUTATOR/NEGATOR dropped from the GAVO DaCHS block (pgsphere issue #85)"
SCRATCH="firstlight_setup_$$"
export PGCONNECT_TIMEOUT=3
export PGOPTIONS="${PGOPTIONS:+$PGOPTIONS }-c client_min_messages=warning"

say() { echo "setup-postgres: $*"; }
ci() { [[ "${CI:-}" =~ ^([Tt]rue|TRUE|1|yes)$ ]]; }
down() { # the server is not there: a failure in CI, a note elsewhere
    if ci; then
        say "ERROR: $1 (CI=true: PostgreSQL is required)" >&2
        exit 1
    fi
    say "NOTE: $1; PostgreSQL tests will be skipped"
    exit 0
}
as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}
q() { psql "$URL" -X -v ON_ERROR_STOP=1 -Atq "$@"; } # admin database
reachable() { q -c 'SELECT 1' >/dev/null 2>&1; }

# --- 1. the server -----------------------------------------------------------------------------
command -v psql >/dev/null || down "psql is not installed"
host="$(sed -E 's#^[a-z]+://([^@/]*@)?(\[[^]]*\]|[^:/?]*).*#\2#' <<<"$URL")"
case "$host" in
    "" | 127.0.0.1 | localhost | "[::1]") local_server=true ;;
    *) local_server=false ;;
esac

if ! reachable; then
    started=false
    if $local_server && command -v pg_lsclusters >/dev/null; then
        # the local cluster (pg_lsclusters: version name port status ...) on the URL's port, if down
        port="$(sed -nE 's#^[a-z]+://[^/?]*:([0-9]+)([/?].*)?$#\1#p' <<<"$URL")"
        while read -r version name; do
            say "starting cluster $version/$name"
            as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start || true
            started=true
        done < <(pg_lsclusters -h | awk -v port="${port:-5432}" '$3 == port && $4 == "down" { print $1, $2 }')
    fi
    if $started; then
        for _ in $(seq 20); do
            reachable && break
            sleep 0.5
        done
    fi
    reachable || down "no PostgreSQL server answers at $URL"
fi

major="$(q -c 'SHOW server_version_num')"
major="$((major / 10000))"
sharedir="/usr/share/postgresql/$major"
if command -v pg_config >/dev/null && [[ "$(pg_config --version)" == "PostgreSQL $major."* ]]; then
    sharedir="$(pg_config --sharedir)"
fi
extdir="$sharedir/extension"
[[ -d "$extdir" ]] || local_server=false # server elsewhere: only check the extensions

# --- 2. packages -------------------------------------------------------------------------------
if $local_server; then
    packages=()
    [[ -f "$extdir/q3c.control" ]] || packages+=("postgresql-$major-q3c")
    [[ -f "$extdir/pg_sphere.control" ]] || packages+=("postgresql-$major-pgsphere")
    if ((${#packages[@]})); then
        log="$(mktemp)"
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 ||
            { cat "$log" >&2; exit 1; }
        say "installing ${packages[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${packages[@]}" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
        rm -f "$log"
    fi
fi

# --- 3. scratch database, pgsphere patch -------------------------------------------------------
q -c "DROP DATABASE IF EXISTS $SCRATCH" -c "CREATE DATABASE $SCRATCH"
trap 'q -c "DROP DATABASE IF EXISTS $SCRATCH WITH (FORCE)" || true' EXIT
s() { q -c "\\c $SCRATCH" "$@"; } # scratch database

patch_pgsphere() {
    local sqlfile="$extdir/pg_sphere--1.2.0.sql"
    [[ -f "$sqlfile" ]] || { say "ERROR: $sqlfile is missing" >&2; exit 1; }
    if [[ "$(head -n 1 "$sqlfile")" == "$MARKER" ]]; then
        say "ERROR: $sqlfile is patched already and still fails" >&2
        exit 1
    fi
    say "patching $sqlfile (pgsphere issue #85; shipped file kept as $sqlfile.orig)"
    as_root cp -p "$sqlfile" "$sqlfile.orig"
    # In the block, rebuild each CREATE OPERATOR without its COMMUTATOR/NEGATOR attributes: the
    # other lines stay as they are, and the statement stays valid whatever line the ");" is on.
    local tmp
    tmp="$(mktemp)"
    awk -v marker="$MARKER" '
        NR == 1 { print marker }
        /a minimal set of backwards-compatible operators for GAVO DaCHS/ { block = 1 }
        /^-- debugging/ { block = 0 }
        !block { print; next }
        !in_op && /^CREATE OPERATOR/ { in_op = 1; stmt = "" }
        !in_op { print; next }
        { stmt = stmt $0 "\n" }
        /;[[:space:]]*$/ {
            in_op = 0
            open = index(stmt, "(")
            head = substr(stmt, 1, open)
            rest = substr(stmt, open + 1)
            cl = length(rest)
            while (cl > 0 && substr(rest, cl, 1) != ")") cl--
            tail = substr(rest, cl)
            n = split(substr(rest, 1, cl - 1), attrs, ",")
            split("", keep)
            kept = 0
            for (i = 1; i <= n; i++) {
                if (attrs[i] ~ /^[[:space:]]*$/) continue
                if (attrs[i] ~ /^[[:space:]]*(COMMUTATOR|NEGATOR)[[:space:]]*=/) continue
                keep[++kept] = attrs[i]
            }
            out = head
            for (i = 1; i <= kept; i++) {
                a = keep[i]
                if (i == kept) sub(/\n[[:space:]]*$/, "\n", a)
                out = out a (i < kept ? "," : "")
            }
            if (kept && out !~ /\n$/) out = out "\n"
            printf "%s", out tail
        }
    ' "$sqlfile.orig" >"$tmp"
    grep -q "a minimal set of backwards-compatible operators for GAVO DaCHS" "$tmp" ||
        { say "ERROR: GAVO DaCHS block not found in $sqlfile" >&2; exit 1; }
    as_root install -m 0644 "$tmp" "$sqlfile.firstlight-new"
    as_root mv -f "$sqlfile.firstlight-new" "$sqlfile" # atomic: readers see old or new
    rm -f "$tmp"
}

if ! err="$(s -c 'CREATE EXTENSION pg_sphere' 2>&1)"; then
    if [[ "$err" == *"is already the commutator of operator"* ]] && $local_server; then
        patch_pgsphere
    else
        say "ERROR: CREATE EXTENSION pg_sphere failed: $err" >&2
        exit 1
    fi
fi

# --- 4. both extensions work -------------------------------------------------------------------
check="$(s -c 'CREATE EXTENSION IF NOT EXISTS pg_sphere' -c 'CREATE EXTENSION q3c' \
    -c "SELECT round(q3c_dist(0, 0, 1, 0)::numeric, 6), scircle '<(0d,0d),1d>' @> spoint '(0.5d,0d)'" \
    2>&1)" || { say "ERROR: extension check failed: $check" >&2; exit 1; }
[[ "$check" == "1.000000|t" ]] || { say "ERROR: unexpected extension check result: $check" >&2; exit 1; }
say "ok: q3c and pg_sphere create on PostgreSQL $major at $URL"
