# Shared by .ci/mariadb.sh and .ci/galera.sh (sourced, after each sets LOG_PREFIX):
# logging, root, binary lookup and installing missing Debian packages.
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
