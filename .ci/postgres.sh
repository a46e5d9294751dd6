#!/usr/bin/env bash
# A private PostgreSQL server for the PostgreSQL backend's tests; never the system service.
#
#   postgres.sh start [DIR] [plain]
#                                 install packages when missing, initialise DIR (a fresh temp
#                                 dir when omitted) as a cluster owned by an unprivileged user
#                                 (initdb and postgres refuse root), start it on a free loopback
#                                 port with its socket in DIR, create database sessions_test and
#                                 its owner `sessions` with a random password (scram-sha-256 over
#                                 TCP), and print `export` lines (URL, DIR, this script's path)
#                                 for eval. The server speaks TLS (clients choose) with a
#                                 certificate for 127.0.0.1/localhost signed by a CA made now
#                                 with openssl; the exports name that CA
#                                 (SESSION_STORE_POSTGRES_CA) and a second, unrelated CA
#                                 (SESSION_STORE_POSTGRES_WRONG_CA). With `plain`: no TLS.
#   postgres.sh stop [DIR]        stop the server (fast shutdown) and remove DIR.
#   postgres.sh kill [DIR]        SIGKILL the postmaster (a crash) and then its backends; DIR is kept.
#   postgres.sh start-again [DIR] start the server again on the same data directory and port
#                                 (crash recovery runs after a kill).
#   postgres.sh restart [DIR]     kill, then start-again.
#
# DIR defaults to $SESSION_STORE_POSTGRES_DIR for every command but start.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
DATABASE=sessions_test
DB_USER=sessions

LOG_PREFIX=postgres.sh
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

pg_bin() { # the newest installed server's binary directory
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

ensure_packages() {
    local missing=()
    pg_bin >/dev/null || missing+=(postgresql)
    command -v psql >/dev/null || missing+=(postgresql-client)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v runuser >/dev/null || missing+=(util-linux)
    install_missing ${missing[@]+"${missing[@]}"}
}

# The unprivileged user that owns the cluster: `postgres` (made by Debian's package) when run as
# root, else the caller.
owner() { if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

admin() { # admin DIR [psql args...]: psql as the cluster's superuser over the private socket
    local dir=$1; shift
    # shellcheck disable=SC1091
    . "$dir/env"
    as_owner psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$PORT" -U "$(owner)" -d postgres "$@"
}

launch() { # launch DIR PORT: start the cluster and wait until it accepts connections
    local dir=$1 port=$2 tls_opt=""
    if [ -f "$dir/tls/server.pem" ]; then
        tls_opt="-c ssl=on -c ssl_cert_file=$dir/tls/server.pem -c ssl_key_file=$dir/tls/server-key.pem"
    fi
    # -w waits until the server accepts connections (or fails).
    as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c port=$port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c max_connections=1000 -c shared_buffers=64MB -c fsync=on $tls_opt" \
        start >/dev/null || { tail -20 "$dir/server.log" >&2 || true; return 1; }
    head -n 1 "$dir/data/postmaster.pid" > "$dir/server.pid"
}

print_env() {
    local dir=$1
    # shellcheck disable=SC1091
    . "$dir/env"
    echo "export SESSION_STORE_POSTGRES_URL=postgres://$DB_USER:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
    echo "export SESSION_STORE_POSTGRES_SOCKET=$dir/.s.PGSQL.$PORT"
    echo "export SESSION_STORE_POSTGRES_DIR=$dir"
    echo "export SESSION_STORE_POSTGRES_CTL=$SCRIPT"
    if [ -f "$dir/tls/ca.pem" ]; then
        echo "export SESSION_STORE_POSTGRES_CA=$dir/tls/ca.pem"
        echo "export SESSION_STORE_POSTGRES_WRONG_CA=$dir/tls/wrong-ca.pem"
    fi
}

dir_arg() { # the state dir from $1 or the environment
    local dir=${1:-${SESSION_STORE_POSTGRES_DIR:-}}
    [ -n "$dir" ] || die "no directory given and SESSION_STORE_POSTGRES_DIR is not set"
    [ -f "$dir/env" ] || die "$dir holds no server started by this script"
    echo "$dir"
}

cmd_start() {
    ensure_packages
    local dir=${1:-} tls=${2:-}
    if [ -z "$dir" ]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/session-store-postgres.XXXXXX"); fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ ! -f "$dir/env" ] || die "$dir already holds a server; stop it first"
    case "$tls" in
        "") make_certificates "$dir"; chmod 600 "$dir/tls/server-key.pem" ;;
        plain) ;;
        *) die "unknown start option: $tls (expected plain)" ;;
    esac
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    chmod 700 "$dir"
    local password
    password="pw$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    log "initialising $dir/data"
    # Local (socket) connections trust the cluster's owner only; TCP needs a password.
    as_owner "$(pg_bin)/initdb" -D "$dir/data" -U "$(owner)" --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    local port
    for attempt in 1 2 3; do
        port=$(free_port)
        printf 'PORT=%s\nPASSWORD=%s\n' "$port" "$password" > "$dir/env"
        if launch "$dir" "$port"; then break; fi
        [ "$attempt" = 3 ] && die "postgres did not start (log: $dir/server.log)"
        log "start on port $port failed; retrying"
    done
    admin "$dir" <<SQL
CREATE ROLE $DB_USER LOGIN PASSWORD '$password';
CREATE DATABASE $DATABASE OWNER $DB_USER;
SQL
    log "server up on 127.0.0.1:$port (pid $(server_pid "$dir"), dir $dir)"
    print_env "$dir"
}

cmd_kill() {
    local dir pid children child
    dir=$(dir_arg "${1:-}")
    pid=$(server_pid "$dir")
    # The postmaster's backends notice its death on their own; the ones still alive after a
    # second are killed too, as in a crash of the whole machine, so the port and the shared
    # memory are free for start-again.
    children=$(pgrep -P "$pid" 2>/dev/null || true)
    signal_and_wait "$pid" KILL 100
    for child in $children; do signal_and_wait "$child" KILL 10; done
    rm -f "$dir/server.pid"
}

cmd_start_again() {
    local dir
    dir=$(dir_arg "${1:-}")
    # shellcheck disable=SC1091
    . "$dir/env"
    for _ in $(seq 1 50); do
        launch "$dir" "$PORT" 2>/dev/null && { log "server up again on port $PORT"; return 0; }
        sleep 0.2 # the port may linger briefly after a kill
    done
    die "postgres did not start again (log: $dir/server.log)"
}

cmd_stop() {
    local dir pid
    dir=$(dir_arg "${1:-}")
    pid=$(server_pid "$dir")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
        signal_and_wait "$pid" KILL 100
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) cmd_start "${2:-}" "${3:-}" ;;
    stop) cmd_stop "${2:-}" ;;
    kill) cmd_kill "${2:-}" ;;
    start-again) cmd_start_again "${2:-}" ;;
    restart) cmd_kill "${2:-}"; cmd_start_again "${2:-}" ;;
    env) print_env "$(dir_arg "${2:-}")" ;;
    *) echo "usage: $0 start [DIR] [plain] | stop [DIR] | kill [DIR] | start-again [DIR] | restart [DIR] | env [DIR]" >&2; exit 2 ;;
esac
