#!/usr/bin/env bash
# A private MariaDB server for the MySQL backend's tests; never the system service.
#
#   mariadb.sh start [DIR] [plain]
#                                 install packages when missing, initialise DIR (a fresh temp
#                                 dir when omitted), start a server on a free loopback port,
#                                 create database sessions_test and user sessions, and print
#                                 `export` lines (URL, DIR, this script's path) for eval.
#                                 The server speaks TLS (clients choose) with a certificate for
#                                 127.0.0.1/localhost signed by a CA made now with openssl; the
#                                 exports name that CA (SESSION_STORE_MYSQL_CA) and a second,
#                                 unrelated CA (SESSION_STORE_MYSQL_WRONG_CA). With `plain`, the
#                                 server has no TLS at all.
#   mariadb.sh stop [DIR]         stop the server and remove DIR.
#   mariadb.sh kill [DIR]         SIGKILL the server (simulates a crash); DIR is kept.
#   mariadb.sh start-again [DIR]  start the server again on the same datadir and port.
#   mariadb.sh restart [DIR]      kill, then start-again.
#
# DIR defaults to $SESSION_STORE_MARIADB_DIR for every command but start.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
DATABASE=sessions_test
DB_USER=sessions

LOG_PREFIX=mariadb.sh
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ensure_packages() {
    local missing=()
    find_bin mariadbd mysqld >/dev/null || missing+=(mariadb-server)
    find_bin mariadb-install-db mysql_install_db >/dev/null || missing+=(mariadb-server)
    find_bin mariadb mysql >/dev/null || missing+=(mariadb-client)
    [ -f /usr/include/mariadb/mysql.h ] || missing+=(libmariadb-dev)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    command -v openssl >/dev/null || missing+=(openssl)
    install_missing ${missing[@]+"${missing[@]}"}
}

client() { # client DIR [args...]: the admin client over the private socket
    local dir=$1; shift
    "$(find_bin mariadb mysql)" --no-defaults --protocol=socket --socket="$dir/mysqld.sock" -uroot "$@"
}

launch() { # launch DIR PORT: start mariadbd in the background and wait until it answers
    local dir=$1 port=$2 user_opt=() tls_opt=()
    [ "$(id -u)" = 0 ] && user_opt=(--user=root)
    if [ -f "$dir/tls/server.pem" ]; then
        tls_opt=(--ssl-ca="$dir/tls/ca.pem" --ssl-cert="$dir/tls/server.pem" --ssl-key="$dir/tls/server-key.pem")
    fi
    "$(find_bin mariadbd mysqld)" --no-defaults "${user_opt[@]}" "${tls_opt[@]}" \
        --datadir="$dir/data" --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" \
        --port="$port" --bind-address=127.0.0.1 --log-error="$dir/error.log" \
        --innodb-buffer-pool-size=64M --innodb-log-file-size=48M --max-connections=500 \
        --skip-name-resolve --tmpdir="$dir/tmp" >/dev/null 2>&1 </dev/null &
    local pid=$!
    echo "$pid" > "$dir/server.pid"
    for _ in $(seq 1 600); do
        if client "$dir" -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
        kill -0 "$pid" 2>/dev/null || { tail -20 "$dir/error.log" >&2 || true; return 1; }
        sleep 0.1
    done
    tail -20 "$dir/error.log" >&2 || true
    return 1
}

print_env() {
    local dir=$1
    # shellcheck disable=SC1091
    . "$dir/env"
    echo "export SESSION_STORE_MYSQL_URL=mysql://$DB_USER:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
    echo "export SESSION_STORE_MARIADB_DIR=$dir"
    echo "export SESSION_STORE_MARIADB_CTL=$SCRIPT"
    if [ -f "$dir/tls/ca.pem" ]; then
        echo "export SESSION_STORE_MYSQL_CA=$dir/tls/ca.pem"
        echo "export SESSION_STORE_MYSQL_WRONG_CA=$dir/tls/wrong-ca.pem"
    fi
}

dir_arg() { # the state dir from $1 or the environment
    local dir=${1:-${SESSION_STORE_MARIADB_DIR:-}}
    [ -n "$dir" ] || die "no directory given and SESSION_STORE_MARIADB_DIR is not set"
    [ -f "$dir/env" ] || die "$dir holds no server started by this script"
    echo "$dir"
}

cmd_start() {
    ensure_packages
    local dir=${1:-} tls=${2:-}
    if [ -z "$dir" ]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/session-store-mariadb.XXXXXX"); fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ ! -f "$dir/env" ] || die "$dir already holds a server; stop it first"
    case "$tls" in
        "") make_certificates "$dir" ;;
        plain) ;;
        *) die "unknown start option: $tls (expected plain)" ;;
    esac
    log "initialising $dir/data"
    local user_opt=()
    [ "$(id -u)" = 0 ] && user_opt=(--user=root)
    # A temp dir of its own: parallel runs of mariadb-install-db sharing one collide.
    mkdir -p "$dir/tmp"
    TMPDIR="$dir/tmp" "$(find_bin mariadb-install-db mysql_install_db)" --no-defaults "${user_opt[@]}" \
        --datadir="$dir/data" --auth-root-authentication-method=normal \
        --skip-test-db >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; die "mariadb-install-db failed"; }
    local port password
    password="pw$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    for attempt in 1 2 3; do
        port=$(free_port)
        if launch "$dir" "$port"; then break; fi
        [ "$attempt" = 3 ] && die "mariadbd did not start (log: $dir/error.log)"
        log "start on port $port failed; retrying"
    done
    printf 'PORT=%s\nPASSWORD=%s\n' "$port" "$password" > "$dir/env"
    test_database_sql "$password" | client "$dir"
    log "server up on 127.0.0.1:$port (pid $(server_pid "$dir"), dir $dir)"
    print_env "$dir"
}

cmd_kill() {
    local dir
    dir=$(dir_arg "${1:-}")
    signal_and_wait "$(server_pid "$dir")" KILL 100
    rm -f "$dir/server.pid" "$dir/mysqld.pid" "$dir/mysqld.sock"
}

cmd_start_again() {
    local dir
    dir=$(dir_arg "${1:-}")
    # shellcheck disable=SC1091
    . "$dir/env"
    for _ in $(seq 1 50); do
        launch "$dir" "$PORT" && { log "server up again on port $PORT"; return 0; }
        sleep 0.2 # the port may linger briefly after a kill
    done
    die "mariadbd did not start again (log: $dir/error.log)"
}

cmd_stop() {
    local dir pid
    dir=$(dir_arg "${1:-}")
    pid=$(server_pid "$dir")
    signal_and_wait "$pid" TERM 300
    signal_and_wait "$pid" KILL 100
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
