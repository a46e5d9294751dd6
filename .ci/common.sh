# Shared by .ci/mariadb.sh, .ci/galera.sh and .ci/postgres.sh (sourced, after each sets
# LOG_PREFIX): logging, root, binary lookup, installing missing Debian packages, free ports
# and test certificates.
log() { echo "$LOG_PREFIX: $*" >&2; }
die() { log "$*"; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root to run: $*"; fi
}

find_bin() {
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
        if [ -x "/usr/sbin/$name" ]; then echo "/usr/sbin/$name"; return 0; fi
    done
    return 1
}

# install_missing PACKAGE...: apt-get installs the named packages (duplicates allowed)
# without starting their services; does nothing when given none.
install_missing() {
    [ $# -gt 0 ] || return 0
    log "installing: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
        apt-get install -y -qq --no-install-recommends $(printf '%s\n' "$@" | sort -u) >&2
}

# The test database and its user on 127.0.0.1 and localhost, as SQL for the admin client:
# `test_database_sql PASSWORD | client ...`. Uses the caller's DATABASE and DB_USER.
test_database_sql() {
    cat <<SQL
CREATE DATABASE IF NOT EXISTS $DATABASE CHARACTER SET utf8mb4;
CREATE USER '$DB_USER'@'localhost' IDENTIFIED BY '$1';
CREATE USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$1';
GRANT ALL ON $DATABASE.* TO '$DB_USER'@'localhost';
GRANT ALL ON $DATABASE.* TO '$DB_USER'@'127.0.0.1';
SQL
}

# A random port outside the kernel's ephemeral range: a port in that range can be taken at any
# time as the local end of an outgoing connection (a test's pool to another server), and a
# server restarted on it (start-again, a Galera node's state-transfer daemon) then fails to bind.
random_port() {
    local low=32768 high=60999 range
    if range=$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null); then read -r low high <<<"$range"; fi
    if [ "$low" -gt 11024 ]; then
        echo $(( 10000 + RANDOM % (low - 10000) ))
    elif [ "$high" -lt 64511 ]; then
        echo $(( high + 1 + RANDOM % (65535 - high) ))
    else
        echo $(( 1024 + RANDOM % 30000 )) # no room outside the range: any unprivileged port
    fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local port
    for _ in $(seq 1 100); do
        port=$(random_port)
        if port_free "$port"; then echo "$port"; return 0; fi
    done
    die "no free port found"
}

make_certificates() { # make_certificates DIR: a CA, a server certificate it signs, and a wrong CA
    local tls=$1/tls
    mkdir -p "$tls"
    (
        cd "$tls"
        # EC keys: made in milliseconds, unlike RSA on a loaded machine.
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj "/CN=session-store test CA" -keyout ca-key.pem -out ca.pem
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
            -keyout server-key.pem -out server.csr
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
            -extfile san.ext -out server.pem
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj "/CN=session-store wrong CA" -keyout wrong-ca-key.pem -out wrong-ca.pem
    ) >"$1/openssl.log" 2>&1 || { cat "$1/openssl.log" >&2; die "openssl failed"; }
}

# The server pid a private-server script recorded in DIR (mariadb.sh, postgres.sh).
server_pid() { cat "$1/server.pid" 2>/dev/null || true; }

# Sends SIGNAL to PID when it is alive and waits up to TRIES tenths of a second for it to end.
signal_and_wait() {
    local pid=$1 signal=$2 tries=$3
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill "-$signal" "$pid"
    for _ in $(seq 1 "$tries"); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}
