#!/usr/bin/env bash
# scripts/s3-server.sh — a real S3 server with Object Lock for tests and local use.
#
# Runs Ceph RADOS Gateway (Debian's radosgw) on a one-mon / one-osd cluster bound to 127.0.0.1,
# following /work/shared/recipes/s3-object-lock-server.md. Why Ceph: it is the one server we could
# run here whose Object Lock is real (COMPLIANCE refuses deletes); Azurite and s3rver are not.
#
# Usage:
#   scripts/s3-server.sh start  [--bluestore] [BASEDIR]   install if missing, start, print env
#   scripts/s3-server.sh stop   [BASEDIR]                 stop rgw -> osd -> mon (by PID files)
#   scripts/s3-server.sh status [BASEDIR]                 exit 0 and print env when it answers
#   scripts/s3-server.sh env    [BASEDIR]                 print the env lines only
#   scripts/s3-server.sh rgw-stop|rgw-start [BASEDIR]     stop/start only the gateway (outage
#                                                         tests; the objects stay in the OSD)
#
# `start` prints shell lines on stdout (everything else goes to stderr), so
#   eval "$(scripts/s3-server.sh start)"
# sets SEALTRAIL_S3_ENDPOINT, SEALTRAIL_S3_REGION, SEALTRAIL_S3_ACCESS_KEY_ID and
# SEALTRAIL_S3_SECRET_ACCESS_KEY. Idempotent: start on a running server only prints the env;
# stop on a stopped one does nothing. A fresh start (nothing running) wipes BASEDIR's cluster state.
#
# Environment: SEALTRAIL_S3_BASEDIR (default ${TMPDIR:-/tmp}/sealtrail-s3), SEALTRAIL_S3_PORT
# (default 7480), SEALTRAIL_S3_BLUESTORE=1 (same as --bluestore: data on a sparse file instead of
# RAM; use it for runs writing hundreds of MB — memstore holds about 2x what was written in RAM).
set -euo pipefail

CMD="${1:-}"
shift || true
BLUESTORE="${SEALTRAIL_S3_BLUESTORE:-0}"
BASE=""
for a in "$@"; do
  case "$a" in
    --bluestore) BLUESTORE=1 ;;
    --memstore) BLUESTORE=0 ;;
    -*) echo "s3-server: unknown option $a" >&2; exit 2 ;;
    *) BASE="$a" ;;
  esac
done
BASE="${BASE:-${SEALTRAIL_S3_BASEDIR:-${TMPDIR:-/tmp}/sealtrail-s3}}"
PORT="${SEALTRAIL_S3_PORT:-7480}"
ENDPOINT="http://127.0.0.1:${PORT}"
REGION="us-east-1"
# Fixed test credentials: this server is for tests on 127.0.0.1 only, never for real data.
ACCESS_KEY="SEALTRAILTESTACCESS0"
SECRET_KEY="sealtrail-test-secret-key-not-for-production-0"
CONF="$BASE/ceph.conf"
RUN="$BASE/run"

log() { echo "s3-server: $*" >&2; }
die() { echo "s3-server: error: $*" >&2; exit 1; }

print_env() {
  echo "export SEALTRAIL_S3_ENDPOINT=$ENDPOINT"
  echo "export SEALTRAIL_S3_REGION=$REGION"
  echo "export SEALTRAIL_S3_ACCESS_KEY_ID=$ACCESS_KEY"
  echo "export SEALTRAIL_S3_SECRET_ACCESS_KEY=$SECRET_KEY"
}

pid_alive() { # $1 = pid file
  [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

# A SigV4-signed ListBuckets: proves the gateway answers AND knows the test user (an anonymous
# request would answer too, before the user exists). curl 7.88 does not add x-amz-content-sha256,
# which RGW requires in the signature: we send the SHA-256 of the empty body ourselves.
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
signed_ok() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H "x-amz-content-sha256: $EMPTY_SHA256" \
    --aws-sigv4 "aws:amz:${REGION}:s3" --user "${ACCESS_KEY}:${SECRET_KEY}" "$ENDPOINT/" 2>/dev/null) || true
  [[ "$code" == "200" ]]
}

port_busy() { # $1 = port; true when something listens on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ensure_installed() {
  if command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null \
    && command -v radosgw-admin >/dev/null && command -v monmaptool >/dev/null; then
    return 0
  fi
  local SUDO=""
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "radosgw/ceph-mon/ceph-osd are missing and I am not root (no sudo): install them with apt-get"
    SUDO="sudo"
  fi
  log "installing radosgw ceph-mon ceph-osd (apt-get, ~70 MB)"
  local pkgs=(radosgw ceph-mon ceph-osd uuid-runtime curl)
  if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" >&2; then
    $SUDO apt-get update -q >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" >&2
  fi
}

write_conf() {
  local store_lines
  if [[ "$BLUESTORE" == 1 ]]; then
    # bluestore_block_path must be beside the OSD data folder, not inside it (mkfs fails, ELOOP).
    store_lines="osd_objectstore = bluestore
bluestore_block_path = $BASE/osd/block-\$id
bluestore_block_create = true
bluestore_block_size = 21474836480
osd_memory_target = 939524096"
  else
    store_lines="osd_objectstore = memstore
memstore_device_bytes = 4294967296"
  fi
  # The $cluster/$name/$id below are Ceph's own metavariables, hence the escapes.
  cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon_host = [v2:127.0.0.1:3300]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_msgr1 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# Without all six, radosgw loops on "get_initial_auth_request returned -13".
ms_mon_client_mode = crc
ms_client_mode = crc
ms_mon_service_mode = crc
ms_service_mode = crc
ms_cluster_mode = crc
ms_mon_cluster_mode = crc
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_max_pg_per_osd = 1000
paxos_propose_interval = 0.01
paxos_min_wait = 0.001
mon_data_avail_warn = 2
mon_data_avail_crit = 1
run_dir = $RUN
admin_socket = $RUN/\$cluster-\$name.asok
pid_file = $RUN/\$name.pid
log_file = $BASE/log/\$name.log
crash_dir = $BASE/crash
$store_lines

[mon]
mon_data = $BASE/mon/\$cluster-\$id

[osd]
osd_data = $BASE/osd/\$cluster-\$id

[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$PORT
rgw_data = $BASE/rgw
EOF
}

wait_for() { # $1 = seconds, $2.. = command
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

start_rgw() {
  radosgw -c "$CONF" -n client.rgw.a
  wait_for 60 signed_ok || die "radosgw did not answer a signed request within 60 s; see $BASE/log/client.rgw.a.log"
}

cmd_start() {
  if pid_alive "$RUN/client.rgw.a.pid" && signed_ok; then
    log "already running at $ENDPOINT (base $BASE)"
    print_env
    return 0
  fi
  ensure_installed
  command -v curl >/dev/null || die "curl is needed to probe the gateway"
  if ! pid_alive "$RUN/mon.a.pid"; then
    # Another cluster (another BASEDIR) may own the ports: reuse its gateway when it knows the test
    # user, otherwise say clearly what is in the way.
    if signed_ok; then
      log "a gateway with the test credentials already answers on $ENDPOINT (not started from $BASE): using it"
      print_env
      return 0
    fi
    port_busy "$PORT" && die "127.0.0.1:$PORT is in use by something that is not this test gateway; stop it or set SEALTRAIL_S3_PORT"
    port_busy 3300 && die "127.0.0.1:3300 (ceph-mon) is in use, probably by a cluster from another BASEDIR: run '$0 stop THAT_BASEDIR'"
  fi
  # Anything half-running from an earlier start is stopped; a fresh start wipes the cluster state.
  cmd_stop
  local t0=$SECONDS
  rm -rf "$BASE"
  mkdir -p "$BASE/run" "$BASE/log" "$BASE/crash" "$BASE/mon" "$BASE/osd" "$BASE/rgw"
  FSID=$(uuidgen)
  write_conf
  log "starting mon (base $BASE, $([[ $BLUESTORE == 1 ]] && echo bluestore || echo memstore))"
  monmaptool --create --fsid "$FSID" --addv a '[v2:127.0.0.1:3300]' "$BASE/monmap" >/dev/null
  ceph-mon -c "$CONF" -i a --mkfs --monmap "$BASE/monmap" >&2
  ceph-mon -c "$CONF" -i a
  local OSD_UUID ID
  OSD_UUID=$(uuidgen)
  ID=$(ceph -c "$CONF" --connect-timeout 30 osd new "$OSD_UUID")
  log "starting osd.$ID"
  # MemStore's mkfs writes its fsid file into osd_data but does not create the folder.
  mkdir -p "$BASE/osd/ceph-$ID"
  ceph-osd -c "$CONF" -i "$ID" --mkfs --osd-uuid "$OSD_UUID" >&2 2>"$BASE/log/osd-mkfs.log" \
    || die "ceph-osd --mkfs failed; see $BASE/log/osd-mkfs.log"
  ceph-osd -c "$CONF" -i "$ID" 2>>"$BASE/log/osd-start.log"
  echo "$ID" >"$BASE/osd-id"
  log "starting radosgw on $ENDPOINT"
  # The user must exist before signed_ok can pass; radosgw-admin talks to the cluster, not to rgw.
  radosgw -c "$CONF" -n client.rgw.a
  radosgw-admin -c "$CONF" user create --uid=sealtrail-test --display-name="sealtrail tests" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null
  wait_for 60 signed_ok || die "radosgw did not answer a signed request within 60 s; see $BASE/log/client.rgw.a.log"
  log "ready in $((SECONDS - t0)) s"
  print_env
}

stop_one() { # $1 = pid file, $2 = label
  local f="$1" pid
  [[ -s "$f" ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$2 (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

cmd_stop() {
  [[ -d "$RUN" ]] || return 0
  stop_one "$RUN/client.rgw.a.pid" radosgw
  local f
  for f in "$RUN"/osd.*.pid; do [[ -e "$f" ]] && stop_one "$f" "$(basename "$f" .pid)"; done
  stop_one "$RUN/mon.a.pid" ceph-mon
  return 0
}

cmd_status() {
  if pid_alive "$RUN/client.rgw.a.pid" && signed_ok; then
    log "running at $ENDPOINT (base $BASE)"
    print_env
    return 0
  fi
  log "not running (base $BASE)"
  return 1
}

case "$CMD" in
  start) cmd_start ;;
  stop) cmd_stop; log "stopped (base $BASE)" ;;
  status) cmd_status ;;
  env) print_env ;;
  rgw-stop) stop_one "$RUN/client.rgw.a.pid" radosgw; log "gateway stopped; mon/osd still up" ;;
  rgw-start)
    [[ -f "$CONF" ]] && pid_alive "$RUN/mon.a.pid" || die "cluster not running: use start"
    pid_alive "$RUN/client.rgw.a.pid" || start_rgw
    print_env ;;
  *) echo "usage: $0 start|stop|status|env|rgw-stop|rgw-start [--bluestore] [BASEDIR]" >&2; exit 2 ;;
esac
