#!/usr/bin/env bash
# Several Letterbox instances on one Maildir tree on a real distributed
# filesystem (issue 10). Sets up a one-brick GlusterFS volume on loopback,
# mounts it twice with FUSE (two mounts stand for two hosts), runs the
# multi-instance tests of cmd/letterbox/internal/clustertest with instance A
# on the first mount and B on the second (the same tree), and always tears
# everything down again.
#
# Usage, as root, from anywhere:
#   deploy/glusterfs/test.sh                      # go test -run TestTwoInstances
#   deploy/glusterfs/test.sh -run TestMeasure     # other go test flags; set
#                                                 # CLUSTERTEST_MEASURE=1 for it
#
# It installs nothing. It needs glusterd, gluster and mount.glusterfs
# (Debian: glusterfs-server and glusterfs-client; .ci/run installs them), and
# says "skipped: ..." and exits 0 without root, /dev/fuse or those programs,
# or when a glusterd already runs on this machine (it is not ours to touch).
#
# What it changes outside its temporary directory, and undoes on exit:
#   - /etc/hosts: one line mapping the brick host name to 127.0.0.1 (Gluster
#     wants a name, not an address, for the brick). Only that line is
#     removed again, in place (/etc/hosts may be a bind mount).
#   - a glusterd process, bound to 127.0.0.1 (transport.socket.bind-address)
#     and started on a glusterd.vol of its own (-f), with its working
#     directory in the temporary directory: /etc/glusterfs/glusterd.vol is
#     left as it is, and /var/lib/glusterd but for two empty entries glusterd
#     makes there at its first start whatever its configuration
#     (geo-replication/gsyncd_template.conf, ss_brick/).
#   - the volume, its brick process (also bound to 127.0.0.1) and two FUSE
#     mounts.
# Gluster still appends to its command history and brick log under
# /var/log/glusterfs; the brick log is removed at the end.
#
# Environment: GLUSTER_TEST_HOST (brick host name, default
# letterbox-gluster-test), GLUSTER_TEST_MOUNT_OPTS (extra FUSE mount options,
# e.g. attribute-timeout=0,entry-timeout=0), and the CLUSTERTEST_* variables
# of the test package (cmd/letterbox/internal/clustertest/doc.go).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"

skip() {
	echo "skipped: GlusterFS multi-instance test: $*"
	exit 0
}
[[ $(id -u) -eq 0 ]] || skip "needs root (glusterd, mount)"
[[ -c /dev/fuse ]] || skip "no /dev/fuse"
for tool in glusterd gluster mount.glusterfs; do
	command -v "$tool" >/dev/null 2>&1 ||
		skip "$tool not found (apt-get install glusterfs-server glusterfs-client)"
done
if pgrep -x glusterd >/dev/null; then
	skip "a glusterd already runs on this machine; not touching it"
fi
if (exec 3<>/dev/tcp/127.0.0.1/24007) 2>/dev/null; then
	skip "127.0.0.1:24007 (glusterd's port) is taken"
fi

host=${GLUSTER_TEST_HOST:-letterbox-gluster-test}
vol=letterbox-test
marker="# letterbox deploy/glusterfs/test.sh $$"
if addr=$(getent hosts "$host" | awk '{print $1; exit}') && [[ -n $addr && $addr != 127.0.0.1 ]]; then
	skip "$host resolves to $addr, not 127.0.0.1"
fi

# The brick needs a file system with extended attributes; /tmp has them.
work=$(mktemp -d /tmp/letterbox-gluster.XXXXXX)
mkdir -p "$work/glusterd" "$work/brick" "$work/m1" "$work/m2" "$work/log"
brick_log=/var/log/glusterfs/bricks/$(sed 's|^/||; s|/|-|g' <<<"$work/brick").log
glusterd_pid=

g() { gluster --mode=script --log-file="$work/log/cli.log" "$@"; }

teardown() {
	set +e
	for m in "$work/m1" "$work/m2"; do
		if mountpoint -q "$m"; then
			umount "$m" || umount -l "$m"
		fi
	done
	if [[ -n $glusterd_pid ]]; then
		g volume stop "$vol" force >/dev/null 2>&1
		g volume delete "$vol" >/dev/null 2>&1
		# A brick the stop did not end.
		for p in /var/run/gluster/vols/"$vol"/*.pid; do
			[[ -f $p ]] && kill "$(cat "$p")" 2>/dev/null && rm -f "$p"
		done
		rmdir /var/run/gluster/vols/"$vol" 2>/dev/null
		kill "$glusterd_pid" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$glusterd_pid" 2>/dev/null || break
			sleep 0.2
		done
		kill -9 "$glusterd_pid" 2>/dev/null
	fi
	if grep -qF "$marker" /etc/hosts; then
		grep -vF "$marker" /etc/hosts >"$work/hosts" && cat "$work/hosts" >/etc/hosts
	fi
	rm -f "$brick_log"
	rm -rf "$work"
	echo "GlusterFS test: torn down"
}
trap teardown EXIT
trap 'exit 130' INT TERM

if [[ -z $(getent hosts "$host") ]]; then
	echo "127.0.0.1 $host $marker" >>/etc/hosts
fi

cat >"$work/glusterd.vol" <<EOF
volume management
    type mgmt/glusterd
    option working-directory $work/glusterd
    option transport-type socket
    option transport.socket.bind-address 127.0.0.1
    option transport.socket.listen-port 24007
    option transport.socket.read-fail-log off
    option ping-timeout 0
    option event-threads 1
    option max-port 60999
end-volume
EOF
glusterd -f "$work/glusterd.vol" -p "$work/glusterd.pid" -l "$work/log/glusterd.log" --log-level=WARNING
for _ in $(seq 150); do
	[[ -s $work/glusterd.pid ]] && g pool list >/dev/null 2>&1 && break
	sleep 0.2
done
glusterd_pid=$(cat "$work/glusterd.pid" 2>/dev/null || true)
[[ -n $glusterd_pid ]] && g pool list >/dev/null || {
	echo "glusterd did not come up; its log:"
	cat "$work/log/glusterd.log"
	exit 1
}

# One brick; "force" because it is on the root file system.
g volume create "$vol" "$host:$work/brick" force
# What README "Scaling out" asks of a volume several Letterbox instances
# share: no client-side caching of data, attributes, directory listings or
# negative lookups, and writes sent at once, so every host sees every other
# host's changes as soon as they are made.
for opt in ${GLUSTER_TEST_VOLUME_OPTS-performance.quick-read=off performance.io-cache=off performance.read-ahead=off performance.stat-prefetch=off performance.open-behind=off performance.write-behind=off performance.readdir-ahead=off performance.parallel-readdir=off performance.nl-cache=off}; do
	g volume set "$vol" "${opt%%=*}" "${opt#*=}"
done
g volume start "$vol"
mount_opts=${GLUSTER_TEST_MOUNT_OPTS-attribute-timeout=0,entry-timeout=0,negative-timeout=0}
opts="log-file=$work/log/m1.log${mount_opts:+,$mount_opts}"
timeout 60 mount -t glusterfs -o "$opts" "$host:/$vol" "$work/m1"
opts="log-file=$work/log/m2.log${mount_opts:+,$mount_opts}"
timeout 60 mount -t glusterfs -o "$opts" "$host:/$vol" "$work/m2"
# The two mounts must show one tree.
echo probe >"$work/m1/.probe"
[[ $(cat "$work/m2/.probe") == probe ]] || {
	echo "the two mounts do not share files"
	exit 1
}
rm -f "$work/m1/.probe"
echo "GlusterFS volume $vol on $host:$work/brick, mounted on $work/m1 and $work/m2"

# Every operation crosses FUSE and the brick: a third of the local workload
# keeps the run to a minute or two.
export CLUSTERTEST_SCALE=${CLUSTERTEST_SCALE:-0.3}
export CLUSTERTEST_ROOTS="$work/m1:$work/m2" LETTERBOX_TEST_SHARED_ROOTS="$work/m1:$work/m2"
status=0
if [[ ${1:-} == -- ]]; then
	# Any command on the two mounts: deploy/glusterfs/test.sh -- go test -run TestShared ./store
	shift
	"$@" || status=$?
else
	args=("$@")
	((${#args[@]} > 0)) || args=(-run 'TestTwoInstances')
	go test -count=1 -v -timeout 30m "${args[@]}" ./cmd/letterbox/internal/clustertest || status=$?
fi
exit "$status"
