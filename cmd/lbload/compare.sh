#!/usr/bin/env bash
# compare.sh measures Letterbox and Dovecot 2.3 side by side, in one go, on
# loopback only, and prints one table with both servers' figures and the
# ratio. Run it as root from anywhere in the repository (Dovecot needs root
# to start and to own its copy of the mail as nobody):
#
#     apt-get install dovecot-imapd     # once
#     cmd/lbload/compare.sh
#
# What it does, all under one temporary directory it deletes at the end:
#   - lbload gen: user big1 with a BIG-message INBOX, users load1..loadUSERS
#     with MSGS messages each; Dovecot gets its own copy, owned by nobody;
#   - builds letterbox and lbload from this checkout, and one self-signed
#     certificate both servers use; same passwd-file (same bcrypt cost);
#   - a first, untimed pass on each server (Dovecot builds its indexes and
#     header cache: they persist on disk, as in production);
#   - ROUNDS rounds, alternating which server goes first; in each, for each
#     server: RESTARTS times (start; lbload ops, each op but the appends
#     once, cold; stop), then start; lbload ops warm (each op once untimed,
#     REPEAT times timed); lbload imap for each LOADS entry (mode:clients)
#     for DURATION; an untimed SELECT; stop;
#   - lbload report: the table, ratios Letterbox/Dovecot of the medians.
#
# Settings (environment): ROUNDS=2 RESTARTS=2 REPEAT=5 BIG=100000 USERS=10
# MSGS=2000 DURATION=20s LOADS="long:10 long:50 session:10 login:10"
# LB_PORT=31993 DV_PORT=32993 RESULTS=DIR (keep the JSON results and the
# table there) KEEP=1 (keep the temporary directory, for a look at the logs)
# DV_AUTH_CACHE=1 (Dovecot with auth_cache_size=10M and auth_cache_ttl=1
# hour, to compare with Letterbox's login cache, which is on by default;
# Debian's Dovecot has none).
set -euo pipefail

ROUNDS=${ROUNDS:-2}
RESTARTS=${RESTARTS:-2}
REPEAT=${REPEAT:-5}
BIG=${BIG:-100000}
USERS=${USERS:-10}
MSGS=${MSGS:-2000}
DURATION=${DURATION:-20s}
LOADS=${LOADS-long:10 long:50 session:10 login:10} # empty: no loads
LB_PORT=${LB_PORT:-31993}
DV_PORT=${DV_PORT:-32993}
PASSWORD=loadtest # lbload gen's default
NOBODY=65534
DV_EXTRA=
if [ "${DV_AUTH_CACHE:-0}" = 1 ]; then
	DV_EXTRA=$'auth_cache_size = 10M\nauth_cache_ttl = 1 hour'
fi

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (Dovecot starts as root and serves mail as nobody)"
command -v dovecot >/dev/null && command -v doveadm >/dev/null ||
	die "no dovecot: apt-get install dovecot-imapd"
command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
for port in "$LB_PORT" "$DV_PORT"; do
	if [ -n "$(ss -ltnH "sport = :$port")" ]; then
		die "port $port is taken; set LB_PORT / DV_PORT"
	fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lbcompare.XXXXXX")
LB_PID= DV_PID=
DVCONF=$WORK/dovecot.conf

stop_letterbox() {
	[ -n "$LB_PID" ] || return 0
	kill -TERM "$LB_PID" 2>/dev/null || true
	wait "$LB_PID" 2>/dev/null || true
	LB_PID=
}

stop_dovecot() {
	[ -n "$DV_PID" ] || return 0
	doveadm -c "$DVCONF" stop 2>/dev/null || kill -TERM "$DV_PID" 2>/dev/null || true
	wait "$DV_PID" 2>/dev/null || true
	DV_PID=
}

cleanup() {
	local rc=$?
	set +e
	stop_letterbox
	stop_dovecot
	if [ "${KEEP:-0}" = 1 ]; then
		echo "compare.sh: kept $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port waits until pid listens on 127.0.0.1:port (looking, not
# connecting), and checks that everything pid listens on is on 127.0.0.1.
wait_port() {
	local pid=$1 port=$2 name=$3 addrs
	for _ in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || die "$name exited; see its log in $WORK (KEEP=1 keeps it)"
		addrs=$(ss -ltnpH | grep "pid=$pid," | awk '{print $4}' || true)
		if grep -qx "127\.0\.0\.1:$port" <<<"$addrs"; then
			if grep -v '^127\.0\.0\.1:' <<<"$addrs"; then
				die "$name listens beyond 127.0.0.1"
			fi
			return 0
		fi
		sleep 0.1
	done
	die "$name does not answer on 127.0.0.1:$port"
}

start_letterbox() {
	"$WORK/bin/letterbox" serve --config "$WORK/letterbox.toml" >>"$WORK/letterbox.log" 2>&1 &
	LB_PID=$!
	wait_port "$LB_PID" "$LB_PORT" letterbox
}

start_dovecot() {
	dovecot -F -c "$DVCONF" >>"$WORK/dovecot.out" 2>&1 &
	DV_PID=$!
	wait_port "$DV_PID" "$DV_PORT" dovecot
}

start() { "start_$1"; }
stop() { "stop_$1"; }
port() { if [ "$1" = letterbox ]; then echo "$LB_PORT"; else echo "$DV_PORT"; fi; }

LBLOAD=$WORK/bin/lbload
RES=$WORK/results

# ops SERVER TAG FILE [lbload ops flags]
ops() {
	local srv=$1 tag=$2 file=$3
	shift 3
	"$LBLOAD" ops -addr "127.0.0.1:$(port "$srv")" -tls -user big1 -password "$PASSWORD" \
		-label "$srv" -tag "$tag" -json "$RES/$file.json" "$@"
}

# load SERVER MODE CLIENTS FILE [lbload imap flags]
load() {
	local srv=$1 mode=$2 conns=$3 file=$4
	shift 4
	"$LBLOAD" imap -addr "127.0.0.1:$(port "$srv")" -tls -users-file "$WORK/mix.passwd" -password "$PASSWORD" \
		-mode "$mode" -conns "$conns" -label "$srv" -tag load -json "$RES/$file.json" "$@"
}

say "machine before: $(nproc) cores, $(uptime)"
UPTIME_BEFORE=$(uptime)

REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')
say "building letterbox and lbload from $ROOT ($REV)"
mkdir -p "$WORK/bin" "$RES"
(cd "$ROOT" && go build -o "$WORK/bin/" ./cmd/letterbox ./cmd/lbload)

say "generating mail: big1 with $BIG messages, $USERS users with $MSGS each"
"$LBLOAD" gen -dir "$WORK/gen-big" -users 1 -prefix big -messages "$BIG" -password "$PASSWORD"
"$LBLOAD" gen -dir "$WORK/gen-mix" -users "$USERS" -prefix load -messages "$MSGS" -password "$PASSWORD"
mkdir "$WORK/lb"
mv "$WORK/gen-big/big1" "$WORK/gen-mix"/load* "$WORK/lb/"
cat "$WORK/gen-big/passwd" "$WORK/gen-mix/passwd" >"$WORK/passwd"
cp "$WORK/gen-mix/passwd" "$WORK/mix.passwd"
rm -rf "$WORK/gen-big" "$WORK/gen-mix"
cp -a "$WORK/lb" "$WORK/dv"
chown -R "$NOBODY:$NOBODY" "$WORK/dv"
cp "$WORK/passwd" "$WORK/dvpasswd"
chown dovecot "$WORK/dvpasswd"
chmod 0600 "$WORK/passwd" "$WORK/dvpasswd"
chmod 0755 "$WORK" # nobody walks to its mail
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

cat >"$WORK/letterbox.toml" <<EOF
data_dir = "$WORK/lbdata"
[server]
drain_timeout = "5s"
[tls]
cert_file = "$WORK/cert.pem"
key_file = "$WORK/key.pem"
[auth]
users_file = "$WORK/passwd"
[mail]
path = "$WORK/lb/{user}/Maildir"
[pop3]
listen = []
listen_tls = []
[imap]
listen = []
listen_tls = ["127.0.0.1:$LB_PORT"]
max_connections_per_ip = 1000
max_connections_per_user = 100
EOF

# Debian's dovecot-imapd with its defaults but for paths and ports: one
# imap process per session, login processes in high-security mode.
cat >"$DVCONF" <<EOF
protocols = imap
listen = 127.0.0.1
base_dir = $WORK/dvrun
state_dir = $WORK/dvstate
log_path = $WORK/dovecot.log
ssl = required
ssl_cert = <$WORK/cert.pem
ssl_key = <$WORK/key.pem
ssl_dh = </usr/share/dovecot/dh.pem
mail_location = maildir:$WORK/dv/%u/Maildir
mail_uid = $NOBODY
mail_gid = $NOBODY
passdb {
  driver = passwd-file
  args = scheme=BLF-CRYPT $WORK/dvpasswd
}
$DV_EXTRA
userdb {
  driver = static
  args = uid=$NOBODY gid=$NOBODY home=$WORK/dv/%u
}
protocol imap {
  mail_max_userip_connections = 100
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $DV_PORT
    ssl = yes
  }
}
EOF
mkdir -p "$WORK/dvstate"

say "first, untimed pass (Dovecot builds its indexes and header cache)"
for srv in letterbox dovecot; do
	start "$srv"
	ops "$srv" prewarm "0-prewarm-$srv" -warmup 0 -repeat 1 -only select,flags,unseen,headers >/dev/null
	load "$srv" session "$USERS" "0-prewarm-load-$srv" -duration 3s >/dev/null
	stop "$srv"
done
rm -f "$RES"/0-*

for round in $(seq "$ROUNDS"); do
	order="letterbox dovecot"
	[ $((round % 2)) = 0 ] && order="dovecot letterbox"
	for srv in $order; do
		say "round $round/$ROUNDS, $srv ($(cut -d' ' -f1-3 /proc/loadavg))"
		# No appends after a restart: a folder changed by them moments
		# before the stop is one Dovecot cannot trust its index for (the
		# directory's mtime is too recent), and it rescans 100,000 files at
		# the next SELECT; that would measure a changed folder, not a restart.
		for k in $(seq "$RESTARTS"); do
			start "$srv"
			ops "$srv" "after restart" "2-restart-$srv-r$round-$k" -warmup 0 -repeat 1 -only select,flags,unseen,headers
			stop "$srv"
		done
		start "$srv"
		ops "$srv" warm "1-warm-$srv-r$round" -warmup 1 -repeat "$REPEAT"
		for l in $LOADS; do
			load "$srv" "${l%%:*}" "${l##*:}" "3-load-${l%%:*}-${l##*:}-$srv-r$round" -duration "$DURATION"
		done
		# Settle, untimed: the warm appends changed the folder; a SELECT
		# once its mtime is old lets Dovecot record it as synced again.
		sleep 2
		"$LBLOAD" ops -addr "127.0.0.1:$(port "$srv")" -tls -user big1 -password "$PASSWORD" -only select -warmup 0 -repeat 1 >/dev/null
		stop "$srv"
	done
done

say "machine after: $(uptime)"
{
	echo "Letterbox $REV vs Dovecot $(dovecot --version)," \
		"$ROUNDS rounds alternating servers; ops on big1's INBOX ($BIG messages), loads on $USERS users × $MSGS messages for $DURATION"
	echo "ms: lower is better; ops/s, sessions/s: higher is better; ratio letterbox/dovecot of the medians; per round: each round's median"
	echo "load before: $UPTIME_BEFORE"
	echo "load after:  $(uptime)"
	echo
	"$LBLOAD" report -base dovecot "$RES"/[1-3]-*.json
} | tee "$WORK/table.txt"
if [ -n "${RESULTS:-}" ]; then
	mkdir -p "$RESULTS"
	cp "$RES"/*.json "$WORK/table.txt" "$RESULTS/"
	echo "results in $RESULTS" >&2
fi
