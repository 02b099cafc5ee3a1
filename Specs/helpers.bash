# shellcheck shell=bash
#
# Shared helpers for berth's bats specs.  Load with `load helpers` and wire
# the hooks up in the .bats file:
#
#   load helpers
#   setup_file() { berth_setup_file; }
#   setup()      { berth_setup; }
#   teardown()   { berth_teardown; }
#
# Environment contract (scripts/test sets these; all have defaults):
#   BERTH         absolute path of the binary under test (default: `berth` on PATH)
#   BERTH_ROOTFS  pristine busybox rootfs template; when unset it is built once
#                 per bats run with "$BERTH_REPO/scripts/mkrootfs DIR"
#   BERTH_REPO    the repository (default: the parent of the specs directory)
#   BERTH_AS      root | rootless (default: derived from `id -u`)
#   BERTH_TIMEOUT seconds any single berth invocation made through `b` may
#                 take before it is killed (default 60)
#
# Nothing here relies on the host's /dev/null (it may belong to another user):
# scratch input comes from $BERTH_EMPTY, an empty file in the test's tmpdir.

# ---------------------------------------------------------------- environment

berth_resolve_env() {
	if [[ -z "${BERTH_REPO:-}" ]]; then
		BERTH_REPO=$(cd "${BATS_TEST_DIRNAME}/.." && pwd)
	fi
	if [[ -z "${BERTH:-}" ]]; then
		BERTH=$(command -v berth || true)
	fi
	if [[ -n "$BERTH" && "$BERTH" != /* ]]; then
		BERTH=$(command -v "$BERTH" || true)
	fi
	if [[ -z "${BERTH_AS:-}" ]]; then
		if [[ "$(id -u)" == 0 ]]; then BERTH_AS=root; else BERTH_AS=rootless; fi
	fi
	: "${BERTH_TIMEOUT:=60}"
	export BERTH BERTH_REPO BERTH_AS BERTH_TIMEOUT
}

# Build (once per bats run, shared by every file and parallel job) or check
# the rootfs template.
berth_ensure_rootfs() {
	if [[ -n "${BERTH_ROOTFS:-}" ]]; then
		[[ -x "$BERTH_ROOTFS/bin/sh" ]] ||
			fail "BERTH_ROOTFS=$BERTH_ROOTFS has no executable bin/sh"
		export BERTH_ROOTFS
		return 0
	fi
	local dir="$BATS_RUN_TMPDIR/berth-rootfs" mk="$BERTH_REPO/scripts/mkrootfs"
	(
		flock 9
		if [[ ! -e "$dir/.complete" ]]; then
			[[ -x "$mk" ]] || { echo "BERTH_ROOTFS is unset and $mk is missing" >&2; exit 1; }
			rm -rf "$dir"
			"$mk" "$dir" >&2 || { echo "$mk $dir failed" >&2; exit 1; }
			[[ -x "$dir/bin/sh" ]] || { echo "$mk built no $dir/bin/sh" >&2; exit 1; }
			: >"$dir/.complete"
		fi
	) 9>"$BATS_RUN_TMPDIR/berth-rootfs.lock" || return 1
	BERTH_ROOTFS=$dir
	export BERTH_ROOTFS
}

berth_setup_file() {
	berth_resolve_env
	[[ -n "$BERTH" && -x "$BERTH" ]] ||
		fail "berth binary not found (set BERTH or put berth on PATH)"
	case "$BERTH_AS" in root | rootless) ;; *) fail "BERTH_AS must be root or rootless, not '$BERTH_AS'" ;; esac
	if [[ "$BERTH_AS" == root && "$(id -u)" != 0 ]]; then
		fail "BERTH_AS=root but running as uid $(id -u)"
	fi
	berth_ensure_rootfs
}

# Per-test state: STATE is the --root every `b` call uses.
berth_setup() {
	berth_resolve_env
	STATE="$BATS_TEST_TMPDIR/state"
	BERTH_EMPTY="$BATS_TEST_TMPDIR/.empty"
	: >"$BERTH_EMPTY"
	: >"$BATS_TEST_TMPDIR/.defer"
	: >"$BATS_TEST_TMPDIR/.bgpids"
	export STATE BERTH_EMPTY
}

# Runs deferred commands (LIFO), then stops background helpers this test
# started.  Returns non-zero if a deferred command failed.
berth_teardown() {
	local rc=0 line cmds=()
	if [[ -s "$BATS_TEST_TMPDIR/.defer" ]]; then
		mapfile -t cmds <"$BATS_TEST_TMPDIR/.defer"
		local i
		for ((i = ${#cmds[@]} - 1; i >= 0; i--)); do
			eval "${cmds[i]}" || { echo "teardown: '${cmds[i]}' failed" >&2; rc=1; }
		done
		: >"$BATS_TEST_TMPDIR/.defer"
	fi
	if [[ -s "$BATS_TEST_TMPDIR/.bgpids" ]]; then
		while read -r line; do
			berth_stop_pid "$line"
		done <"$BATS_TEST_TMPDIR/.bgpids"
		: >"$BATS_TEST_TMPDIR/.bgpids"
	fi
	return $rc
}

# berth_defer CMD ARG... — run CMD at teardown (arguments are quoted safely).
berth_defer() {
	printf '%q ' "$@" >>"$BATS_TEST_TMPDIR/.defer"
	echo >>"$BATS_TEST_TMPDIR/.defer"
}

# ------------------------------------------------------------------ assertions

if [[ "$(type -t fail)" != function ]]; then
	fail() {
		printf '%s\n' "$*" >&2
		return 1
	}
fi

# assert_contains HAYSTACK NEEDLE [what]
assert_contains() {
	[[ "$1" == *"$2"* ]] || fail "${3:-output} does not contain '$2':
--- 
$1
---"
}

assert_not_contains() {
	[[ "$1" != *"$2"* ]] || fail "${3:-output} unexpectedly contains '$2':
---
$1
---"
}

# assert_eq ACTUAL EXPECTED [what]
assert_eq() {
	[[ "$1" == "$2" ]] || fail "${3:-value}: expected '$2', got '$1'"
}

# assert_status N — after `run`
assert_status() {
	[[ "$status" == "$1" ]] || fail "expected exit status $1, got $status
stdout: $output
stderr: ${stderr:-}"
}

# assert_fails_with PHRASE — after `run --separate-stderr`: non-zero exit and
# exactly one line on stderr, containing PHRASE.
assert_fails_with() {
	[[ "$status" != 0 ]] || fail "expected a failure, got exit 0
stdout: $output
stderr: $stderr"
	local n=${#stderr_lines[@]}
	[[ $n == 1 ]] || fail "expected exactly one line on stderr, got $n:
$stderr"
	[[ "${stderr_lines[0]}" == *"$1"* ]] || fail "stderr line does not contain '$1':
${stderr_lines[0]}"
}

# -------------------------------------------------------------------- waiting

# wait_until SECONDS CMD ARG... — poll CMD every 0.1s until it succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	while ! "$@"; do
		if ((SECONDS >= deadline)); then
			echo "timed out waiting for: $*" >&2
			return 1
		fi
		sleep 0.1
	done
}

# pid_alive PID — true while PID exists and is not a zombie.
pid_alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>&1) || return 1
	s=${s##*) }
	[[ "${s%% *}" != Z ]]
}

pid_dead() { ! pid_alive "$1"; }

file_has() { [[ -f "$1" ]] && grep -qF -- "$2" "$1"; }

# ----------------------------------------------------------- background jobs

# berth_bg OUTFILE CMD ARG... — start CMD in the background with stdin from
# an empty file, stdout+stderr to OUTFILE and bats' fd 3 closed; sets BG_PID
# and stops it at teardown if still running.  Call it directly, not in $( ).
berth_bg() {
	local out=$1
	shift
	"$@" <"$BERTH_EMPTY" >"$out" 2>&1 3>&- &
	BG_PID=$!
	echo "$BG_PID" >>"$BATS_TEST_TMPDIR/.bgpids"
}

# berth_wait_bg PID SECONDS — wait for a background child; returns its exit
# status, or 255 (after killing it) when it outlives SECONDS.
berth_wait_bg() {
	local pid=$1 rc=0
	if ! wait_until "$2" pid_dead "$pid"; then
		echo "pid $pid still running after $2s; killing it" >&2
		kill -KILL "$pid" 2>&1 || true
		wait "$pid" || true
		return 255
	fi
	wait "$pid" || rc=$?
	return $rc
}

# berth_stop_pid PID — TERM then KILL a process this test started.
berth_stop_pid() {
	local pid=$1
	pid_alive "$pid" || return 0
	kill -TERM "$pid" 2>&1 || true
	wait_until 5 pid_dead "$pid" 2>&1 || kill -KILL "$pid" 2>&1 || true
}

# ------------------------------------------------------------ runtime helpers

# b ARG... — "$BERTH" --root "$STATE" ARG..., with stdio on files (so that
# container processes inheriting them never hold bats' capture pipes open),
# bounded by BERTH_TIMEOUT; then replays stdout/stderr.  Use with `run`.
b() {
	local out err rc=0
	out=$(mktemp "$BATS_TEST_TMPDIR/.b.out.XXXXXX")
	err=$(mktemp "$BATS_TEST_TMPDIR/.b.err.XXXXXX")
	timeout -k 5 "$BERTH_TIMEOUT" "$BERTH" --root "$STATE" "$@" \
		<"$BERTH_EMPTY" >"$out" 2>"$err" 3>&- || rc=$?
	cat "$out"
	cat "$err" >&2
	return $rc
}

# berth_spec_flags — flags for `berth spec` matching the current mode.
berth_spec_flags() {
	[[ "$BERTH_AS" == rootless ]] && echo --rootless
	return 0
}

# make_bundle DIR [ARG...] — copy the rootfs template into DIR/rootfs, write
# DIR/config.json with `berth spec` (--rootless when not root) and make it
# test-friendly: no terminal, writable root, process.args = ARG... if given.
make_bundle() {
	local dir=$1
	shift
	mkdir -p "$dir"
	cp -a "$BERTH_ROOTFS" "$dir/rootfs"
	rm -f "$dir/rootfs/.complete"
	# shellcheck disable=SC2046
	"$BERTH" spec $(berth_spec_flags) --bundle "$dir" ||
		fail "berth spec --bundle $dir failed"
	cfg "$dir" '.process.terminal = false | .root.readonly = false'
	if (($#)); then cfg_args "$dir" "$@"; fi
}

# map_subid_ranges DIR — rootless: map the caller to 0 and its first
# /etc/subuid and /etc/subgid ranges from 1 up, so uids other than 0 exist
# in the container (berth then writes the maps through newuidmap and
# newgidmap). Skips when the user has no range; as root it changes nothing.
map_subid_ranges() {
	local dir=$1 user uid gid su sg
	[[ $(id -u) != 0 ]] || return 0
	user=$(id -un) uid=$(id -u) gid=$(id -g)
	su=$(awk -F: -v u="$user" -v i="$uid" '$1 == u || $1 == i { print $2, $3; exit }' /etc/subuid 2>/dev/null)
	sg=$(awk -F: -v u="$user" -v i="$uid" '$1 == u || $1 == i { print $2, $3; exit }' /etc/subgid 2>/dev/null)
	[[ -n $su && -n $sg ]] || skip "$user has no /etc/subuid and /etc/subgid range"
	cfg "$dir" '.linux.uidMappings = [{containerID: 0, hostID: $id, size: 1}, {containerID: 1, hostID: $start, size: $count}]' \
		--argjson id "$uid" --argjson start "${su% *}" --argjson count "${su#* }"
	cfg "$dir" '.linux.gidMappings = [{containerID: 0, hostID: $id, size: 1}, {containerID: 1, hostID: $start, size: $count}]' \
		--argjson id "$gid" --argjson start "${sg% *}" --argjson count "${sg#* }"
}

# cfg DIR FILTER [JQ-OPTION...] — edit DIR/config.json in place with jq.
cfg() {
	local dir=$1 filter=$2
	shift 2
	jq "$@" "$filter" <"$dir/config.json" >"$dir/config.json.new" &&
		mv "$dir/config.json.new" "$dir/config.json" ||
		fail "jq '$filter' on $dir/config.json failed"
}

# cfg_args DIR ARG... — set process.args.
cfg_args() {
	local dir=$1
	shift
	local args a
	# one `--arg` per element, so no argument is ever taken for a jq option
	args=$(for a in "$@"; do jq -n --arg a "$a" '$a'; done | jq -sc .) ||
		fail "cannot encode process.args"
	cfg "$dir" '.process.args = $args' --argjson args "$args"
}

# unique_id [TAG] — a container id unique to this test.
unique_id() {
	echo "t${BATS_TEST_NUMBER}${1:+-$1}-$$-$RANDOM"
}

# state_field ID JQ-PATH — one field of `berth state ID`.
state_field() {
	local json
	json=$(b state "$1") || return 1
	jq -r "$2" <<<"$json"
}

# status_is ID STATUS
status_is() { [[ "$(state_field "$1" .status 2>&1)" == "$2" ]]; }

# mounts_under DIR — mount points in this (host) mount namespace under DIR.
mounts_under() {
	awk -v d="$1" '{ mp = $5; gsub(/\\040/, " ", mp) }
		mp == d || index(mp, d "/") == 1 { print mp }' /proc/self/mountinfo
}

# procs_in DIR ID — pids of processes whose root or cwd lies under DIR, or
# whose command line mentions DIR or ID (only the ones we may inspect).
procs_in() {
	local dir=$1 id=$2 p pid root cwd cmd
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
		root=$(readlink "$p/root" 2>&1) || root=
		cwd=$(readlink "$p/cwd" 2>&1) || cwd=
		cmd=$(tr '\0' ' ' <"$p/cmdline" 2>&1) || cmd=
		if [[ $root == "$dir"/* || $cwd == "$dir"/* || $cmd == *"$dir"* ||
			(-n $id && $cmd == *"$id"*) ]]; then
			echo "$pid $cmd"
		fi
	done
}

# assert_nothing_left ID BUNDLE — no state dir for ID under $STATE, no
# process inside/about BUNDLE, no mount under BUNDLE.
assert_nothing_left() {
	local id=$1 bundle=$2 left
	[[ ! -e "$STATE/$id" ]] || fail "state left behind: $(ls -la "$STATE/$id")"
	left=$(mounts_under "$bundle")
	[[ -z $left ]] || fail "mounts left under $bundle: $left"
	no_procs() { [[ -z $(procs_in "$bundle" "$id") ]]; }
	wait_until 5 no_procs 2>&1 || fail "processes left behind: $(procs_in "$bundle" "$id")"
}

# ------------------------------------------------------------ console socket

# A tiny receiver for --console-socket: listens on SOCKET, takes the pty
# master sent with SCM_RIGHTS, and copies everything read from it to OUTFILE
# until the slave side hangs up (EIO) or TIMEOUT seconds pass.
BERTH_CONSOLE_RECEIVER=$(
	cat <<'PY'
import array, os, select, socket, sys, time
path, out, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + timeout
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
srv.settimeout(timeout)
conn, _ = srv.accept()
fds = array.array("i")
msg, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
for level, kind, data in anc:
    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
        fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
if not fds:
    sys.exit("console receiver: no file descriptor arrived")
master = fds[0]
with open(out, "ab", buffering=0) as f:
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if not r:
            continue
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: every slave fd is closed
            break
        if not data:
            break
        f.write(data)
PY
)

# start_console_receiver SOCKET OUTFILE [TIMEOUT] — sets BG_PID; waits until
# SOCKET exists.
start_console_receiver() {
	berth_bg "$BATS_TEST_TMPDIR/.console-receiver.log" \
		python3 -c "$BERTH_CONSOLE_RECEIVER" "$1" "$2" "${3:-30}"
	wait_until 10 test -S "$1" ||
		fail "console receiver did not start: $(cat "$BATS_TEST_TMPDIR/.console-receiver.log")"
}

# ------------------------------------------------------------ teardown sweeps

# Force-delete every container in this test's --root and make sure their
# processes went with them.
berth_sweep_containers() {
	local rc=0 id pid st root ids=() listed
	[[ -d "$STATE" ]] || return 0
	if listed=$(b list -q 2>"$BATS_TEST_TMPDIR/.sweep.err"); then
		ids+=($listed)
	fi
	for id in "$STATE"/*; do
		[[ -d "$id" ]] && ids+=("${id##*/}")
	done
	for id in $(printf '%s\n' "${ids[@]}" | sort -u); do
		pid=$(state_field "$id" .pid 2>&1) || pid=
		st=$(state_field "$id" .status 2>&1) || st=
		if ! b delete --force "$id" >"$BATS_TEST_TMPDIR/.sweep.log" 2>&1; then
			echo "teardown: delete --force $id failed: $(cat "$BATS_TEST_TMPDIR/.sweep.log")" >&2
			rc=1
		fi
		[[ $pid =~ ^[1-9][0-9]*$ && $st != stopped ]] || continue
		if ! wait_until 10 pid_dead "$pid" >"$BATS_TEST_TMPDIR/.sweep.log" 2>&1; then
			echo "teardown: process $pid of container $id survived delete --force" >&2
			rc=1
			root=$(readlink "/proc/$pid/root" 2>&1) || root=
			[[ $root == "$BATS_TEST_TMPDIR"/* ]] && kill -KILL "$pid"
		fi
	done
	return $rc
}

# A runtime must never leave mounts behind in the host's mount namespace.
berth_sweep_mounts() {
	local left mp
	left=$(mounts_under "$BATS_TEST_TMPDIR")
	[[ -z $left ]] && return 0
	echo "teardown: mounts left behind under $BATS_TEST_TMPDIR:" >&2
	echo "$left" >&2
	if [[ $BERTH_AS == root ]]; then
		sort -r <<<"$left" | while read -r mp; do umount -l "$mp" || true; done
	fi
	return 1
}

# ------------------------------------------------------------ engine helpers
# For the podman-style specs (containers, volumes, logs): each test gets its
# own store ($STATE, --root) and runtime state (--runroot), and the busybox
# image imported into that store from $BERTH_ROOTFS.

# engine_setup_file — the busybox image as a tarball, once per file.
engine_setup_file() {
	berth_setup_file
	BERTH_BUSYBOX_TAR="$BATS_FILE_TMPDIR/busybox.tar.gz"
	[[ -f "$BERTH_BUSYBOX_TAR" ]] || tar -C "$BERTH_ROOTFS" -czf "$BERTH_BUSYBOX_TAR" .
	chmod 0644 "$BERTH_BUSYBOX_TAR"
	export BERTH_BUSYBOX_TAR
}

engine_setup() {
	berth_setup
	RUNROOT="$BATS_TEST_TMPDIR/run"
	export RUNROOT
	e import -q -c 'CMD ["sh"]' "$BERTH_BUSYBOX_TAR" busybox >/dev/null ||
		fail "could not import busybox into $STATE"
}

# engine_teardown — removes every container (force) and the store, then
# fails if a process, mount or runtime state of them is left.
engine_teardown() {
	local rc=0 left
	if [[ -d "$STATE" ]]; then
		e rm --all --force >/dev/null 2>"$BATS_TEST_TMPDIR/.rm.err" || {
			echo "teardown: rm --all --force failed: $(cat "$BATS_TEST_TMPDIR/.rm.err")" >&2
			rc=1
		}
		left=$(procs_using "$STATE")
		[[ -z $left ]] || { echo "teardown: processes left: $left" >&2; rc=1; }
		"$BERTH" --root "$STATE" unshare rm -rf "$STATE" 2>/dev/null
		rm -rf "$STATE" 2>/dev/null
	fi
	left=$(ls -A "$RUNROOT" 2>/dev/null | grep -v '^@' || true)
	[[ -z $left ]] || { echo "teardown: runtime state left: $left" >&2; rc=1; }
	berth_sweep_mounts || rc=1
	berth_teardown || rc=1
	return $rc
}

# e ARG... — berth with this test's store and runtime state (see b).
e() {
	local out err rc=0
	out=$(mktemp "$BATS_TEST_TMPDIR/.e.out.XXXXXX")
	err=$(mktemp "$BATS_TEST_TMPDIR/.e.err.XXXXXX")
	timeout -k 5 "$BERTH_TIMEOUT" "$BERTH" --root "$STATE" --runroot "$RUNROOT" "$@" \
		<"$BERTH_EMPTY" >"$out" 2>"$err" 3>&- || rc=$?
	cat "$out"
	cat "$err" >&2
	rm -f "$out" "$err"
	return $rc
}

# procs_using DIR — pids (other than ours) whose root, cwd or command line
# mention DIR: what a container or monitor of this test would be.
procs_using() {
	local dir=$1 pid
	for pid in /proc/[0-9]*; do
		pid=${pid#/proc/}
		[[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
		if { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$dir"; then echo -n "$pid "; fi
	done
}
