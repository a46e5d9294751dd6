#!/usr/bin/env bash
# A private three-node MariaDB Galera cluster on loopback for the Galera tests; never the
# system service.
#
#   galera.sh start [DIR]          install packages when missing, initialise three data
#                                  directories under DIR (a fresh temp dir when omitted),
#                                  bootstrap node 1, join nodes 2 and 3 (rsync state
#                                  transfer), wait until all three are Synced in one cluster
#                                  of 3, create database sessions_test and user sessions,
#                                  and print `export` lines for eval (multi-host URL, one URL
#                                  per node, DIR, this script's path). Stops what it started
#                                  and removes DIR when any step fails.
#   galera.sh stop [DIR]           stop every node and remove DIR.
#   galera.sh kill N [DIR]         SIGKILL node N (1-3), a crash; its data is kept.
#   galera.sh start-again N [DIR]  recover node N's position (--wsrep-recover) and start it
#                                  again on the same ports so it rejoins by IST; waits until
#                                  it is Synced.
#   galera.sh bootstrap N [DIR]    make node N, left without quorum, the primary component
#                                  again (pc.bootstrap=YES); waits until it is Synced.
#   galera.sh status [DIR]         each node's wsrep state, cluster size and status.
#   galera.sh env [DIR]            print the export lines again.
#
# DIR defaults to $SESSION_STORE_GALERA_DIR for every command but start. The servers run as
# the `mysql` user: as root, rsync's state transfer drops to `nobody` and fails.
set -euo pipefail

SCRIPT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
DATABASE=sessions_test
DB_USER=sessions
NODES=(1 2 3)
PROVIDER_PATHS=(/usr/lib/galera/libgalera_smm.so /usr/lib/galera4/libgalera_smm.so /usr/lib64/galera-4/libgalera_smm.so)

LOG_PREFIX=galera.sh
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

provider() {
    local path
    for path in "${PROVIDER_PATHS[@]}"; do [ -f "$path" ] && { echo "$path"; return 0; }; done
    return 1
}

ensure_packages() {
    local missing=()
    find_bin mariadbd mysqld >/dev/null || missing+=(mariadb-server)
    find_bin mariadb-install-db mysql_install_db >/dev/null || missing+=(mariadb-server)
    find_bin mariadb mysql >/dev/null || missing+=(mariadb-client)
    provider >/dev/null || missing+=(galera-4)
    command -v rsync >/dev/null || missing+=(rsync)
    find_bin ss >/dev/null || missing+=(iproute2)
    install_missing ${missing[@]+"${missing[@]}"}
    id mysql >/dev/null 2>&1 || die "no mysql user (it comes with mariadb-server)"
}

# Twelve free ports: per node SQL, group communication, IST and SST.
pick_ports() {
    local ports=() port
    for _ in $(seq 1 400); do
        port=$(random_port)
        if port_free "$port" && [[ " ${ports[*]} " != *" $port "* ]]; then ports+=("$port"); fi
        [ ${#ports[@]} = 12 ] && { echo "${ports[*]}"; return 0; }
    done
    die "not enough free ports"
}

client() { # client DIR N [args...]: the admin client over node N's socket
    local dir=$1 node=$2; shift 2
    "$(find_bin mariadb mysql)" --no-defaults --protocol=socket --socket="$dir/n$node/mysqld.sock" -uroot "$@"
}

load_env() { # sets SQL_1.., GCOMM_1.., IST_1.., SST_1.., PASSWORD from DIR/env
    # shellcheck disable=SC1091
    . "$1/env"
}

node_pid() { cat "$1/n$2/server.pid" 2>/dev/null || true; }

server_options() { # server_options DIR N: the options every run of node N shares
    local dir=$1 node=$2 sql gcomm ist sst members=""
    sql=$(eval echo "\$SQL_$node"); gcomm=$(eval echo "\$GCOMM_$node")
    ist=$(eval echo "\$IST_$node"); sst=$(eval echo "\$SST_$node")
    for other in "${NODES[@]}"; do
        members+="${members:+,}127.0.0.1:$(eval echo "\$GCOMM_$other")"
    done
    local n="$dir/n$node"
    printf '%s\n' --no-defaults --user=mysql \
        --datadir="$n/data" --socket="$n/mysqld.sock" --pid-file="$n/mysqld.pid" --tmpdir="$n/tmp" \
        --port="$sql" --bind-address=127.0.0.1 --skip-name-resolve \
        --innodb-buffer-pool-size=64M --innodb-log-file-size=48M --max-connections=300 \
        --binlog-format=ROW --innodb-autoinc-lock-mode=2 --default-storage-engine=InnoDB \
        --wsrep-on=ON --wsrep-provider="$(provider)" --wsrep-cluster-name=session-store-test \
        --wsrep-cluster-address="gcomm://$members" --wsrep-node-name="node$node" \
        --wsrep-node-address=127.0.0.1 --wsrep-node-incoming-address="127.0.0.1:$sql" \
        --wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$gcomm;ist.recv_addr=127.0.0.1:$ist" \
        --wsrep-sst-method=rsync --wsrep-sst-receive-address="127.0.0.1:$sst"
}

launch() { # launch DIR N [extra options...]: start node N in the background
    local dir=$1 node=$2; shift 2
    local options=()
    mapfile -t options < <(server_options "$dir" "$node")
    "$(find_bin mariadbd mysqld)" "${options[@]}" "$@" --log-error="$dir/n$node/error.log" \
        >/dev/null 2>&1 </dev/null &
    echo $! > "$dir/n$node/server.pid"
}

# Waits until node N answers, is Synced and sees a cluster of SIZE; fails when it exits.
wait_synced() {
    local dir=$1 node=$2 size=$3 pid state
    pid=$(node_pid "$dir" "$node")
    for _ in $(seq 1 1800); do
        state=$(client "$dir" "$node" -N -B -e \
            "SELECT CONCAT(s.VARIABLE_VALUE, '/', c.VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS s, information_schema.GLOBAL_STATUS c WHERE s.VARIABLE_NAME = 'WSREP_LOCAL_STATE_COMMENT' AND c.VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'" \
            2>/dev/null || true)
        [ "$state" = "Synced/$size" ] && return 0
        kill -0 "$pid" 2>/dev/null || { tail -30 "$dir/n$node/error.log" >&2 || true; log "node $node exited"; return 1; }
        sleep 0.1
    done
    tail -30 "$dir/n$node/error.log" >&2 || true
    log "node $node not Synced in a cluster of $size after 180 s (state: ${state:-none})"
    return 1
}

print_env() {
    local dir=$1 hosts="" node sql
    load_env "$dir"
    for node in "${NODES[@]}"; do
        sql=$(eval echo "\$SQL_$node")
        hosts+="${hosts:+,}127.0.0.1:$sql"
        echo "export SESSION_STORE_GALERA_NODE${node}_URL=mysql://$DB_USER:$PASSWORD@127.0.0.1:$sql/$DATABASE"
    done
    echo "export SESSION_STORE_GALERA_URL=mysql://$DB_USER:$PASSWORD@$hosts/$DATABASE"
    echo "export SESSION_STORE_GALERA_DIR=$dir"
    echo "export SESSION_STORE_GALERA_CTL=$SCRIPT"
}

dir_arg() {
    local dir=${1:-${SESSION_STORE_GALERA_DIR:-}}
    [ -n "$dir" ] || die "no directory given and SESSION_STORE_GALERA_DIR is not set"
    [ -f "$dir/env" ] || die "$dir holds no cluster started by this script"
    echo "$dir"
}

node_arg() {
    case "${1:-}" in 1|2|3) echo "$1" ;; *) die "node must be 1, 2 or 3 (got '${1:-}')" ;; esac
}

signal_and_wait() { # PID SIGNAL TENTHS
    local pid=$1 signal=$2 tries=$3
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill "-$signal" "$pid" 2>/dev/null || true
    for _ in $(seq 1 "$tries"); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}

stop_all() { # stop_all DIR: TERM every node (in parallel), KILL what lingers, remove DIR
    local dir=$1 node pids=()
    for node in "${NODES[@]}"; do
        local pid
        pid=$(node_pid "$dir" "$node")
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && { kill -TERM "$pid" 2>/dev/null || true; pids+=("$pid"); }
    done
    for pid in "${pids[@]}"; do signal_and_wait "$pid" TERM 300 || signal_and_wait "$pid" KILL 100 || true; done
    rm -rf "$dir"
}

cmd_start() {
    ensure_packages
    local dir=${1:-}
    if [ -z "$dir" ]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/session-store-galera.XXXXXX"); fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [ ! -f "$dir/env" ] || die "$dir already holds a cluster; stop it first"
    # From here on, a failure stops every node started and removes DIR.
    trap 'status=$?; if [ $status != 0 ]; then log "start failed; stopping what was started"; stop_all "'"$dir"'"; fi' EXIT
    chmod 755 "$dir"
    local ports password node i=0
    read -r -a ports <<<"$(pick_ports)"
    password="pw$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    {
        for node in "${NODES[@]}"; do
            echo "SQL_$node=${ports[i]}"; echo "GCOMM_$node=${ports[i+1]}"
            echo "IST_$node=${ports[i+2]}"; echo "SST_$node=${ports[i+3]}"
            i=$((i + 4))
        done
        echo "PASSWORD=$password"
    } > "$dir/env.tmp"
    # shellcheck disable=SC1091
    . "$dir/env.tmp"
    log "initialising three data directories in $dir"
    local pids=()
    for node in "${NODES[@]}"; do
        mkdir -p "$dir/n$node/tmp"
        chown -R mysql: "$dir/n$node"
        # A temp dir of its own each: parallel runs of mariadb-install-db sharing one collide.
        TMPDIR="$dir/n$node/tmp" "$(find_bin mariadb-install-db mysql_install_db)" --no-defaults --user=mysql \
            --datadir="$dir/n$node/data" --auth-root-authentication-method=normal --skip-test-db \
            >"$dir/n$node/install.log" 2>&1 &
        pids+=($!)
    done
    for i in 0 1 2; do
        wait "${pids[i]}" || { cat "$dir/n$((i + 1))/install.log" >&2; die "mariadb-install-db failed for node $((i + 1))"; }
    done
    mv "$dir/env.tmp" "$dir/env"
    log "bootstrapping node 1 (127.0.0.1:$SQL_1)"
    launch "$dir" 1 --wsrep-new-cluster
    wait_synced "$dir" 1 1 || die "node 1 did not start (log: $dir/n1/error.log)"
    test_database_sql "$password" | client "$dir" 1
    log "joining nodes 2 and 3"
    launch "$dir" 2
    wait_synced "$dir" 2 2 || die "node 2 did not join (log: $dir/n2/error.log)"
    launch "$dir" 3
    for node in "${NODES[@]}"; do
        wait_synced "$dir" "$node" 3 || die "node $node not Synced in a cluster of 3 (log: $dir/n$node/error.log)"
    done
    trap - EXIT
    log "cluster of 3 Synced: SQL ports $SQL_1, $SQL_2, $SQL_3 (dir $dir)"
    print_env "$dir"
}

cmd_kill() {
    local node dir
    node=$(node_arg "${1:-}"); dir=$(dir_arg "${2:-}")
    signal_and_wait "$(node_pid "$dir" "$node")" KILL 100 || die "node $node did not die"
    rm -f "$dir/n$node/server.pid" "$dir/n$node/mysqld.pid" "$dir/n$node/mysqld.sock"
    log "node $node killed"
}

cmd_start_again() {
    local node dir position size
    node=$(node_arg "${1:-}"); dir=$(dir_arg "${2:-}")
    load_env "$dir"
    local pid
    pid=$(node_pid "$dir" "$node")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then die "node $node is running"; fi
    # The position the killed node reached, so it rejoins by IST instead of a full copy.
    local options=()
    mapfile -t options < <(server_options "$dir" "$node")
    "$(find_bin mariadbd mysqld)" "${options[@]}" --wsrep-recover --log-error="$dir/n$node/recover.log" \
        >/dev/null 2>&1 </dev/null || { tail -20 "$dir/n$node/recover.log" >&2; die "wsrep-recover of node $node failed"; }
    position=$(grep -oE 'Recovered position: [^ ]+' "$dir/n$node/recover.log" | tail -n 1 | cut -d' ' -f3)
    rm -f "$dir/n$node/recover.log"
    [ -n "$position" ] || die "node $node: no recovered position"
    # The cluster size to wait for: every node whose process is alive.
    size=0
    for other in "${NODES[@]}"; do
        [ "$other" = "$node" ] && { size=$((size + 1)); continue; }
        pid=$(node_pid "$dir" "$other")
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && size=$((size + 1))
    done
    # A node restarted before the others evicted its killed instance can be told to leave
    # (SELF-LEAVE) as it joins: wait until every live node sees a cluster without it.
    wait_evicted "$dir" "$node" $((size - 1))
    local attempt
    for attempt in 1 2 3; do
        for _ in $(seq 1 50); do
            ports_free "$node" && break
            sleep 0.2 # the ports may linger briefly after a kill
        done
        if [ "$attempt" -lt 3 ]; then
            log "starting node $node again at $position (attempt $attempt)"
            launch "$dir" "$node" --wsrep-start-position="$position"
        else
            # Two rejoins by IST failed (a node that aborted applying the IST aborts again at
            # the same position; CI saw signal 6 in the applier): the last one copies the
            # whole state from a live node (rsync SST) instead.
            log "starting node $node again by a full state transfer (attempt $attempt)"
            rm -f "$dir/n$node/data/grastate.dat" "$dir/n$node/data/gvwstate.dat"
            launch "$dir" "$node"
        fi
        if wait_synced "$dir" "$node" "$size"; then
            log "node $node Synced again in a cluster of $size"
            return 0
        fi
        grep -E '\[ERROR\]|\[Warning\] WSREP' "$dir/n$node/error.log" | tail -20 >&2 || true
        signal_and_wait "$(node_pid "$dir" "$node")" KILL 100 || true
        rm -f "$dir/n$node/server.pid" "$dir/n$node/mysqld.pid" "$dir/n$node/mysqld.sock"
        wait_evicted "$dir" "$node" $((size - 1))
    done
    die "node $node did not rejoin in 3 attempts (log: $dir/n$node/error.log)"
}

ports_free() { # ports_free N: node N's SQL, group communication, IST and SST ports are free
    local node=$1 kind
    for kind in SQL GCOMM IST SST; do port_free "$(eval echo "\$${kind}_$node")" || return 1; done
}

# Waits (up to 60 s) until every live node other than N reports a cluster of SIZE.
wait_evicted() {
    local dir=$1 node=$2 size=$3 other pid seen settled
    for _ in $(seq 1 600); do
        settled=true
        for other in "${NODES[@]}"; do
            [ "$other" = "$node" ] && continue
            pid=$(node_pid "$dir" "$other")
            [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
            seen=$(client "$dir" "$other" -N -B -e "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_SIZE'" 2>/dev/null || true)
            [ "$seen" = "$size" ] || settled=false
        done
        [ "$settled" = true ] && return 0
        sleep 0.1
    done
    log "the live nodes still count node $node after 60 s; starting it anyway"
}

cmd_bootstrap() {
    local node dir
    node=$(node_arg "${1:-}"); dir=$(dir_arg "${2:-}")
    client "$dir" "$node" -e "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'" || die "pc.bootstrap on node $node failed"
    wait_synced "$dir" "$node" 1 || die "node $node did not become a primary component of 1"
    log "node $node is the primary component again"
}

cmd_status() {
    local dir node
    dir=$(dir_arg "${1:-}")
    for node in "${NODES[@]}"; do
        echo "node $node: $(client "$dir" "$node" -N -B -e "SELECT GROUP_CONCAT(CONCAT(VARIABLE_NAME, '=', VARIABLE_VALUE) SEPARATOR ' ') FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_LOCAL_STATE_COMMENT', 'WSREP_CLUSTER_SIZE', 'WSREP_CLUSTER_STATUS')" 2>&1 || true)"
    done
}

case "${1:-}" in
    start) cmd_start "${2:-}" ;;
    stop) stop_all "$(dir_arg "${2:-}")" ;;
    kill) cmd_kill "${2:-}" "${3:-}" ;;
    start-again) cmd_start_again "${2:-}" "${3:-}" ;;
    bootstrap) cmd_bootstrap "${2:-}" "${3:-}" ;;
    status) cmd_status "${2:-}" ;;
    env) print_env "$(dir_arg "${2:-}")" ;;
    *) echo "usage: $0 start [DIR] | stop [DIR] | kill N [DIR] | start-again N [DIR] | bootstrap N [DIR] | status [DIR] | env [DIR]" >&2; exit 2 ;;
esac
