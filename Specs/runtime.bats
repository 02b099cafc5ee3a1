#!/usr/bin/env bats
#
# End-to-end spec of berth's low-level, runc-compatible runtime CLI
# (spec/create/start/state/kill/delete/run/exec/list/ps), as a user sees it.
#
# Runs as root (BERTH_AS=root) and as an unprivileged user with
# `spec --rootless` bundles (BERTH_AS=rootless); see helpers.bash for the
# environment contract.  Every test builds its own bundle under
# $BATS_TEST_TMPDIR and uses its own --root, and teardown force-deletes
# whatever is left in it.

bats_require_minimum_version 1.7.0

load helpers

setup_file() {
	berth_setup_file
}

setup() {
	berth_setup
	B="$BATS_TEST_TMPDIR/bundle"
	LOG="$BATS_TEST_TMPDIR/log"
}

teardown() {
	local rc=0
	berth_sweep_containers || rc=1
	berth_teardown || rc=1
	berth_sweep_mounts || rc=1
	return $rc
}

root_only() {
	[[ $BERTH_AS == root ]] || skip "$1"
}

# run_ctr [RUN-FLAG...] — foreground `berth run` of bundle $B under a fresh id.
run_ctr() {
	ID=$(unique_id)
	run --separate-stderr b run "$@" --bundle "$B" "$ID"
}

# create_ctr [CREATE-FLAG...] — `berth create` of $B as $ID; must succeed.
create_ctr() {
	ID=$(unique_id)
	b create "$@" --bundle "$B" "$ID" >"$LOG" 2>&1 || fail "create failed: $(cat "$LOG")"
	assert_eq "$(state_field "$ID" .status)" created "status after create"
}

# start_ctr ARG... — bundle $B running ARG... (default: a long sleep) as $ID.
start_ctr() {
	(($#)) || set -- sleep 1000
	make_bundle "$B" "$@"
	create_ctr
	b start "$ID" >"$LOG" 2>&1 || fail "start failed: $(cat "$LOG")"
	assert_eq "$(state_field "$ID" .status)" running "status after start"
	PID=$(state_field "$ID" .pid)
}

# mountinfo helpers over $output (a container's /proc/self/mountinfo)
fstype_at() {
	awk -v mp="$1" '$5 == mp { for (i = 7; i < NF && $i != "-"; i++); t = $(i + 1) } END { print t }' <<<"$output"
}
mountopts_at() {
	awk -v mp="$1" '$5 == mp { o = $6 } END { print o }' <<<"$output"
}
is_mountpoint() {
	awk -v mp="$1" '$5 == mp { f = 1 } END { exit !f }' <<<"$output"
}
has_opt() { [[ ",$1," == *",$2,"* ]]; }

# assert_bundle PATH WHAT — PATH names $B (as given, or symlinks resolved)
assert_bundle() {
	[[ $1 == "$B" || $1 == "$(cd "$B" && pwd -P)" ]] || fail "$2: expected $B, got '$1'"
}

# ================================================================== spec

@test "spec: writes valid JSON with pid, ipc, uts, mount and network namespaces" {
	mkdir -p "$B"
	run --separate-stderr "$BERTH" spec --bundle "$B"
	assert_status 0
	run jq -r '[.linux.namespaces[].type] | join(",")' "$B/config.json"
	assert_status 0
	local ns=",$output,"
	for t in pid ipc uts mount network; do
		assert_contains "$ns" ",$t," "namespaces"
	done
	assert_not_contains "$ns" ",user," "namespaces"
	assert_eq "$(jq -r '.root.path' "$B/config.json")" rootfs "root.path"
	assert_eq "$(jq -r '.ociVersion | type' "$B/config.json")" string "ociVersion"
	assert_eq "$(jq -r '.process.args | length > 0' "$B/config.json")" true "process.args non-empty"
}

@test "spec --rootless: adds a user namespace mapping the caller's uid and gid" {
	mkdir -p "$B"
	run --separate-stderr "$BERTH" spec --rootless --bundle "$B"
	assert_status 0
	run jq -r '[.linux.namespaces[].type] | join(",")' "$B/config.json"
	assert_status 0
	local ns=",$output,"
	for t in user pid mount; do
		assert_contains "$ns" ",$t," "namespaces"
	done
	assert_eq "$(jq -c '.linux.uidMappings' "$B/config.json")" \
		"[{\"containerID\":0,\"hostID\":$(id -u),\"size\":1}]" "uidMappings"
	assert_eq "$(jq -c '.linux.gidMappings' "$B/config.json")" \
		"[{\"containerID\":0,\"hostID\":$(id -g),\"size\":1}]" "gidMappings"
}

@test "spec: refuses to overwrite an existing config.json" {
	mkdir -p "$B"
	echo '{"sentinel": true}' >"$B/config.json"
	for flags in "" --rootless; do
		# shellcheck disable=SC2086
		run --separate-stderr "$BERTH" spec $flags --bundle "$B"
		[[ $status != 0 ]] || fail "spec $flags overwrote config.json"
		assert_contains "$stderr" config.json "stderr of spec $flags"
		assert_eq "$(cat "$B/config.json")" '{"sentinel": true}' "config.json after spec $flags"
	done
}

# =================================================================== run

@test "run: exits with the container's exit code" {
	make_bundle "$B" sh -c 'exit 42'
	run_ctr
	assert_status 42
}

@test "run: a container killed by SIGKILL makes run exit 137" {
	make_bundle "$B" sleep 1000
	ID=$(unique_id)
	berth_bg "$LOG" "$BERTH" --root "$STATE" run --bundle "$B" "$ID"
	local runpid=$BG_PID rc=0
	running_or_gone() { status_is "$ID" running || pid_dead "$runpid"; }
	wait_until 30 running_or_gone && status_is "$ID" running || fail "never running: $(cat "$LOG")"
	b kill "$ID" KILL || fail "kill failed"
	berth_wait_bg "$runpid" 30 || rc=$?
	assert_eq "$rc" 137 "exit status of run"
}

@test "run: the process is pid 1 in a new pid namespace" {
	make_bundle "$B" sh -c 'echo $$; readlink /proc/self/ns/pid'
	run_ctr
	assert_status 0
	assert_eq "${lines[0]}" 1 "pid inside"
	[[ "${lines[1]}" != "$(readlink /proc/self/ns/pid)" ]] || fail "container shares the host pid namespace"
}

@test "run: hostname comes from config.json" {
	make_bundle "$B" hostname
	cfg "$B" '.hostname = "berth-spec-host"'
	run_ctr
	assert_status 0
	assert_eq "$output" berth-spec-host "hostname"
}

@test "run: uid_map/gid_map match the configured user namespace mappings" {
	make_bundle "$B" sh -c 'cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u; id -g'
	if [[ $BERTH_AS == root ]]; then
		# host root stays root (so the bundle path stays reachable), the rest
		# of the container's ids land in an unused host range
		cfg "$B" '.linux.namespaces += [{"type": "user"}]
			| .linux.uidMappings = [{"containerID": 0, "hostID": 0, "size": 1},
			                        {"containerID": 1, "hostID": 300001, "size": 65535}]
			| .linux.gidMappings = .linux.uidMappings
			| .process.user = {"uid": 1000, "gid": 1000}'
	fi
	local want_uid want_gid
	want_uid=$(jq -r '.linux.uidMappings[] | "\(.containerID) \(.hostID) \(.size)"' "$B/config.json")
	want_gid=$(jq -r '.linux.gidMappings[] | "\(.containerID) \(.hostID) \(.size)"' "$B/config.json")
	run_ctr
	assert_status 0
	local uid_map gid_map rest
	uid_map=$(awk '/^--$/ { exit } { print $1, $2, $3 }' <<<"$output")
	gid_map=$(awk '/^--$/ { n++; next } n == 1 { print $1, $2, $3 }' <<<"$output")
	rest=$(awk '/^--$/ { n++; next } n == 2' <<<"$output" | paste -sd' ')
	assert_eq "$uid_map" "$want_uid" "uid_map"
	assert_eq "$gid_map" "$want_gid" "gid_map"
	assert_eq "$rest" "$(jq -r '"\(.process.user.uid) \(.process.user.gid)"' "$B/config.json")" "id -u / id -g"
}

@test "run: process.user.uid/gid are the ids inside the container" {
	make_bundle "$B" sh -c 'id -u; id -g'
	map_subid_ranges "$B"
	cfg "$B" '.process.user = {"uid": 1000, "gid": 1000}'
	run_ctr
	assert_status 0
	assert_eq "${lines[*]}" "1000 1000" "id -u / id -g"
}

@test "run: process.user.additionalGids are visible in id" {
	make_bundle "$B" id -G
	map_subid_ranges "$B"
	cfg "$B" '.process.user = {"uid": 1000, "gid": 1000, "additionalGids": [44, 55]}'
	run_ctr
	assert_status 0
	local g=" $output "
	assert_contains "$g" " 1000 " "id -G"
	assert_contains "$g" " 44 " "id -G"
	assert_contains "$g" " 55 " "id -G"
}

@test "run: /proc, /dev (tmpfs), /dev/pts, /dev/shm and /dev/mqueue are mounted" {
	make_bundle "$B" cat /proc/self/mountinfo
	run_ctr
	assert_status 0
	assert_eq "$(fstype_at /proc)" proc "/proc"
	assert_eq "$(fstype_at /dev)" tmpfs "/dev"
	assert_eq "$(fstype_at /dev/pts)" devpts "/dev/pts"
	assert_eq "$(fstype_at /dev/shm)" tmpfs "/dev/shm"
	assert_eq "$(fstype_at /dev/mqueue)" mqueue "/dev/mqueue"
}

@test "run: maskedPaths are masked and readonlyPaths are read-only" {
	make_bundle "$B" sh -c '
		cat /secret.txt; echo "--secret"
		ls -A /secretdir; echo "--secretdir"
		cat /rodir/file
		touch /rodir/new && echo rodir-writable
		echo "--mountinfo"; cat /proc/self/mountinfo'
	echo topsecret >"$B/rootfs/secret.txt"
	mkdir "$B/rootfs/secretdir" "$B/rootfs/rodir"
	echo hidden >"$B/rootfs/secretdir/hidden-file"
	echo ro-data >"$B/rootfs/rodir/file"
	cfg "$B" '.linux.maskedPaths += ["/secret.txt", "/secretdir"] | .linux.readonlyPaths += ["/rodir"]'
	# a masked /proc file that exists here (/proc/kcore is not always built)
	local p proc_masked=
	for p in $(jq -r '.linux.maskedPaths[]' "$B/config.json"); do
		[[ $p == /proc/* && -f $p ]] && { proc_masked=$p; break; }
	done
	jq -e '.linux.readonlyPaths | index("/proc/sys")' "$B/config.json" >"$LOG" || fail "spec has no /proc/sys in readonlyPaths"
	run_ctr
	assert_status 0
	assert_not_contains "$output" topsecret
	assert_not_contains "$output" hidden-file
	assert_contains "$output" ro-data
	assert_not_contains "$output" rodir-writable
	[[ ! -e "$B/rootfs/rodir/new" ]] || fail "/rodir was writable"
	output=${output#*--mountinfo}
	has_opt "$(mountopts_at /proc/sys)" ro || fail "/proc/sys is not mounted read-only: $(mountopts_at /proc/sys)"
	has_opt "$(mountopts_at /rodir)" ro || fail "/rodir is not mounted read-only"
	if [[ -n $proc_masked ]]; then
		is_mountpoint "$proc_masked" || fail "$proc_masked is not masked"
	fi
}

@test "run: root.readonly makes / read-only" {
	make_bundle "$B" sh -c 'touch /newfile && echo root-writable; echo --; cat /proc/self/mountinfo'
	cfg "$B" '.root.readonly = true'
	run_ctr
	assert_status 0
	assert_not_contains "$output" root-writable
	[[ ! -e "$B/rootfs/newfile" ]] || fail "/ was writable"
	output=${output#*--}
	has_opt "$(mountopts_at /)" ro || fail "/ is not mounted read-only: $(mountopts_at /)"
}

@test "run: a bind mount with ro is read-only, an rbind mount is visible and writable" {
	local ro="$BATS_TEST_TMPDIR/ro-src" rw="$BATS_TEST_TMPDIR/rw-src"
	mkdir -p "$ro" "$rw"
	echo ro-data >"$ro/file"
	echo rw-data >"$rw/file"
	if [[ $BERTH_AS == root ]]; then
		# a submount only an rbind carries into the container
		mkdir "$rw/sub"
		mount -t tmpfs berth-spec "$rw/sub"
		berth_defer umount "$rw/sub"
		echo sub-data >"$rw/sub/file"
	fi
	make_bundle "$B" sh -c '
		cat /mnt/ro/file; touch /mnt/ro/new && echo ro-writable
		cat /mnt/rw/file; echo from-container >/mnt/rw/new
		if [ -d /mnt/rw/sub ]; then cat /mnt/rw/sub/file; fi; true'
	cfg "$B" '.mounts += [
		{"destination": "/mnt/ro", "type": "bind", "source": $ro, "options": ["bind", "ro"]},
		{"destination": "/mnt/rw", "type": "bind", "source": $rw, "options": ["rbind", "rw"]}]' \
		--arg ro "$ro" --arg rw "$rw"
	run_ctr
	assert_status 0
	assert_contains "$output" ro-data
	assert_not_contains "$output" ro-writable
	[[ ! -e "$ro/new" ]] || fail "ro bind mount was writable"
	assert_contains "$output" rw-data
	assert_eq "$(cat "$rw/new")" from-container "file written through the rbind mount"
	if [[ $BERTH_AS == root ]]; then
		assert_contains "$output" sub-data "submount seen through rbind"
	fi
}

@test "run: process.env and process.cwd are honoured" {
	make_bundle "$B" sh -c 'echo "$GREETING"; pwd; echo "$PATH"'
	mkdir -p "$B/rootfs/work/dir"
	cfg "$B" '.process.env += ["GREETING=hello world"] | .process.cwd = "/work/dir"'
	run_ctr
	assert_status 0
	assert_eq "${lines[0]}" "hello world" "GREETING"
	assert_eq "${lines[1]}" /work/dir "cwd"
	assert_eq "${lines[2]}" "$(jq -r '.process.env[] | select(startswith("PATH=")) | .[5:]' "$B/config.json")" "PATH"
}

@test "run: RLIMIT_NOFILE below the caller's hard limit is applied" {
	local hard
	hard=$(ulimit -Hn)
	[[ $hard == unlimited ]] && hard=1048576
	((hard >= 64)) || skip "hard RLIMIT_NOFILE of $hard is too small to test"
	local want_hard=$((hard / 2)) want_soft=$((hard / 4))
	make_bundle "$B" sh -c 'ulimit -Sn; ulimit -Hn'
	cfg "$B" '.process.rlimits = [{"type": "RLIMIT_NOFILE", "soft": $s, "hard": $h}]' \
		--argjson s "$want_soft" --argjson h "$want_hard"
	run_ctr
	assert_status 0
	assert_eq "${lines[*]}" "$want_soft $want_hard" "ulimit -Sn / -Hn"
}

@test "run: RLIMIT_NOFILE above the caller's hard limit is clamped with a warning or refused clearly" {
	local hard nr_open want
	hard=$(ulimit -Hn)
	nr_open=$(cat /proc/sys/fs/nr_open)
	if [[ $BERTH_AS == root ]]; then
		# root may raise its own hard limit; only fs.nr_open stops it
		want=$((nr_open + 1))
	else
		[[ $hard == unlimited ]] && skip "caller's hard RLIMIT_NOFILE is unlimited"
		want=$((hard + 1))
	fi
	make_bundle "$B" sh -c 'echo "limit $(ulimit -Hn)"'
	cfg "$B" '.process.rlimits = [{"type": "RLIMIT_NOFILE", "soft": $n, "hard": $n}]' --argjson n "$want"
	run_ctr
	if [[ $status == 0 ]]; then
		# clamped: the container ran with a lower limit, and said so
		assert_contains "$stderr" RLIMIT_NOFILE "warning on stderr"
		[[ "${stderr,,}" == *warn* ]] || fail "stderr is not a warning: $stderr"
		local got=${output#limit }
		[[ $got =~ ^[0-9]+$ ]] && ((got < want)) || fail "container reports hard limit '$output', wanted < $want"
	else
		assert_fails_with RLIMIT_NOFILE
		assert_not_contains "$output" limit "stdout (the container must not have run)"
	fi
}

@test "run: /dev/null, /dev/zero, /dev/urandom and friends are usable devices" {
	make_bundle "$B" sh -c '
		for d in null zero full random urandom tty; do
			[ -c /dev/$d ] || echo "not-a-char-device:$d"
		done
		echo data >/dev/null && echo null-write-ok
		[ -z "$(cat /dev/null)" ] && echo null-read-empty
		[ "$(head -c 16 /dev/zero | wc -c)" = 16 ] && echo zero-read-ok
		[ -z "$(head -c 16 /dev/zero | tr -d "\000")" ] && echo zero-is-zeros
		[ "$(head -c 16 /dev/urandom | wc -c)" = 16 ] && echo urandom-read-ok'
	run_ctr
	assert_status 0
	assert_not_contains "$output" not-a-char-device
	for w in null-write-ok null-read-empty zero-read-ok zero-is-zeros urandom-read-ok; do
		assert_contains "$output" "$w"
	done
}

@test "run: /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr and /dev/ptmx exist" {
	make_bundle "$B" sh -c '
		readlink /dev/fd; readlink /dev/stdin; readlink /dev/stdout; readlink /dev/stderr
		[ -c /dev/ptmx ] && echo ptmx-is-a-char-device
		echo through-dev-stdout >>/dev/stdout'
	run_ctr
	assert_status 0
	assert_eq "${lines[0]}" /proc/self/fd "/dev/fd"
	assert_eq "${lines[1]}" /proc/self/fd/0 "/dev/stdin"
	assert_eq "${lines[2]}" /proc/self/fd/1 "/dev/stdout"
	assert_eq "${lines[3]}" /proc/self/fd/2 "/dev/stderr"
	assert_contains "$output" ptmx-is-a-char-device
	assert_contains "$output" through-dev-stdout
}

@test "run: SIGTERM sent to a foreground run is forwarded to the container" {
	make_bundle "$B" sh -c 'trap "exit 7" TERM; echo ready; while :; do sleep 0.1; done'
	ID=$(unique_id)
	berth_bg "$LOG" "$BERTH" --root "$STATE" run --bundle "$B" "$ID"
	local runpid=$BG_PID rc=0
	ready_or_gone() { file_has "$LOG" ready || pid_dead "$runpid"; }
	wait_until 30 ready_or_gone && file_has "$LOG" ready || fail "container never got ready: $(cat "$LOG")"
	kill -TERM "$runpid"
	berth_wait_bg "$runpid" 30 || rc=$?
	assert_eq "$rc" 7 "exit status of run"
}

@test "run -d: returns at once, leaving the container running" {
	make_bundle "$B" sleep 1000
	local t0=$SECONDS
	run_ctr -d
	assert_status 0
	((SECONDS - t0 < 15)) || fail "run -d took $((SECONDS - t0))s"
	assert_eq "$(state_field "$ID" .status)" running "status"
	pid_alive "$(state_field "$ID" .pid)" || fail "container process is not alive"
}

# ============================================================= lifecycle

@test "lifecycle: create, state, start, kill, state stopped, delete" {
	make_bundle "$B" sleep 1000
	ID=$(unique_id)
	run --separate-stderr b create --bundle "$B" "$ID"
	assert_status 0
	run --separate-stderr b state "$ID"
	assert_status 0
	assert_eq "$(jq -r .id <<<"$output")" "$ID" "state id"
	assert_eq "$(jq -r .status <<<"$output")" created "status after create"
	assert_bundle "$(jq -r .bundle <<<"$output")" "state bundle"
	local pid
	pid=$(jq -r .pid <<<"$output")
	[[ $pid =~ ^[1-9][0-9]*$ ]] || fail "pid after create: '$pid'"
	pid_alive "$pid" || fail "created container has no live process"

	run --separate-stderr b start "$ID"
	assert_status 0
	assert_eq "$(state_field "$ID" .status)" running "status after start"
	assert_eq "$(state_field "$ID" .pid)" "$pid" "pid after start"

	run --separate-stderr b kill "$ID" KILL
	assert_status 0
	wait_until 10 pid_dead "$pid" || fail "process survived SIGKILL"
	wait_until 10 status_is "$ID" stopped || fail "status after kill: $(state_field "$ID" .status)"

	run --separate-stderr b delete "$ID"
	assert_status 0
	run --separate-stderr b state "$ID"
	[[ $status != 0 ]] || fail "state of a deleted container succeeded: $output"
	[[ ! -e "$STATE/$ID" ]] || fail "state dir survived delete"
}

@test "create --pid-file: writes the container's pid" {
	make_bundle "$B" sleep 1000
	create_ctr --pid-file "$BATS_TEST_TMPDIR/pidfile"
	assert_eq "$(cat "$BATS_TEST_TMPDIR/pidfile")" "$(state_field "$ID" .pid)" "pid file"
}

@test "delete: refuses a running container without --force, removes it with --force" {
	start_ctr
	run --separate-stderr b delete "$ID"
	[[ $status != 0 ]] || fail "delete of a running container succeeded"
	assert_eq "$(state_field "$ID" .status)" running "status after refused delete"
	pid_alive "$PID" || fail "refused delete killed the container"

	run --separate-stderr b delete --force "$ID"
	assert_status 0
	wait_until 10 pid_dead "$PID" || fail "process survived delete --force"
	run --separate-stderr b state "$ID"
	[[ $status != 0 ]] || fail "state after delete --force succeeded: $output"
}

@test "kill: the default signal is SIGTERM and reaches the init's handler" {
	start_ctr sh -c 'trap "echo term >/got-term; exit 0" TERM; echo >/ready; while :; do sleep 0.1; done'
	wait_until 30 test -e "$B/rootfs/ready" || fail "container never got ready"
	run --separate-stderr b kill "$ID"
	assert_status 0
	wait_until 10 test -e "$B/rootfs/got-term" || fail "init never saw SIGTERM"
	wait_until 10 status_is "$ID" stopped || fail "status: $(state_field "$ID" .status)"
}

@test "kill --all: signals every process in the container, not just init" {
	# init (pid 1, no TERM handler) is immune to TERM; its children are not
	start_ctr sh -c 'sleep 1000 & sleep 1000 & echo >/ready; wait; echo >/children-gone; exec sleep 1000'
	wait_until 30 test -e "$B/rootfs/ready" || fail "container never got ready"
	run --separate-stderr b kill "$ID" TERM
	assert_status 0
	sleep 1
	[[ ! -e "$B/rootfs/children-gone" ]] || fail "kill without --all reached the children"
	run --separate-stderr b kill --all "$ID" TERM
	assert_status 0
	wait_until 10 test -e "$B/rootfs/children-gone" || fail "kill --all did not reach the children"
	assert_eq "$(state_field "$ID" .status)" running "status (init survives TERM)"
}

@test "list: shows the container in the table, as JSON and with -q" {
	make_bundle "$B" sleep 1000
	create_ctr
	local pid
	pid=$(state_field "$ID" .pid)
	run --separate-stderr b list
	assert_status 0
	awk -v id="$ID" '$1 == id { for (i = 2; i <= NF; i++) if ($i == "created") f = 1 } END { exit !f }' <<<"$output" ||
		fail "no '$ID ... created' row in: $output"
	run --separate-stderr b list -f json
	assert_status 0
	assert_eq "$(jq -r --arg id "$ID" '.[] | select(.id == $id) | .status' <<<"$output")" created "json status"
	assert_eq "$(jq -r --arg id "$ID" '.[] | select(.id == $id) | .pid' <<<"$output")" "$pid" "json pid"
	run --separate-stderr b list -q
	assert_status 0
	assert_eq "$output" "$ID" "list -q"
}

@test "ps -f json: lists the init pid" {
	start_ctr
	run --separate-stderr b ps -f json "$ID"
	assert_status 0
	assert_eq "$(jq --argjson p "$PID" 'index($p) != null' <<<"$output")" true "init pid $PID in $output"
}

# ================================================================== exec

@test "exec: runs in the container's pid namespace, not as pid 1" {
	start_ctr
	run --separate-stderr b exec "$ID" sh -c 'echo $$; readlink /proc/self/ns/pid; readlink /proc/1/ns/pid; cat /proc/1/cmdline | tr "\000" " "'
	assert_status 0
	[[ ${lines[0]} =~ ^[0-9]+$ && ${lines[0]} != 1 ]] || fail "exec pid: '${lines[0]}'"
	assert_eq "${lines[1]}" "${lines[2]}" "pid namespace of exec vs init"
	assert_contains "${lines[3]}" sleep "pid 1's command line"
	local host_view
	if host_view=$(readlink "/proc/$PID/ns/pid" 2>&1); then
		assert_eq "${lines[1]}" "$host_view" "pid namespace seen from the host"
	fi
}

@test "exec: exits with the command's exit code" {
	start_ctr
	run --separate-stderr b exec "$ID" sh -c 'exit 3'
	assert_status 3
}

@test "exec --env: adds variables to the process environment" {
	start_ctr
	run --separate-stderr b exec --env FOO=bar --env "SPACED=a b" "$ID" sh -c 'echo "$FOO|$SPACED"'
	assert_status 0
	assert_eq "$output" "bar|a b" "environment"
}

@test "exec --cwd: runs in the given directory" {
	start_ctr
	mkdir -p "$B/rootfs/work/here"
	run --separate-stderr b exec --cwd /work/here "$ID" pwd
	assert_status 0
	assert_eq "$output" /work/here "cwd"
}

@test "exec --user: runs as the given uid[:gid]" {
	make_bundle "$B" sleep 1000
	map_subid_ranges "$B"
	create_ctr
	b start "$ID" >"$LOG" 2>&1 || fail "start failed: $(cat "$LOG")"
	run --separate-stderr b exec --user 1000 "$ID" id -u
	assert_status 0
	assert_eq "$output" 1000 "id -u"
	run --separate-stderr b exec --user 1000:1001 "$ID" sh -c 'echo $(id -u) $(id -g)'
	assert_status 0
	assert_eq "$output" "1000 1001" "id -u / id -g"
}

@test "exec --process: runs the process described by a JSON file" {
	start_ctr
	mkdir -p "$B/rootfs/work"
	local user
	user=$(jq -c '.process.user' "$B/config.json")
	jq -n --argjson user "$user" '{
		terminal: false, user: $user, cwd: "/work",
		args: ["sh", "-c", "echo \"$FROM_JSON\"; pwd"],
		env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FROM_JSON=hello from process.json"]
	}' >"$BATS_TEST_TMPDIR/process.json"
	run --separate-stderr b exec --process "$BATS_TEST_TMPDIR/process.json" "$ID"
	assert_status 0
	assert_eq "${lines[0]}" "hello from process.json" "env from process.json"
	assert_eq "${lines[1]}" /work "cwd from process.json"
}

@test "exec -d --pid-file: returns at once and records the new process" {
	start_ctr
	local pf="$BATS_TEST_TMPDIR/exec.pid" t0=$SECONDS
	run --separate-stderr b exec -d --pid-file "$pf" "$ID" sh -c 'echo $$ >/exec-inner.pid; exec sleep 1000'
	assert_status 0
	((SECONDS - t0 < 15)) || fail "exec -d took $((SECONDS - t0))s"
	local pid inner nspid
	pid=$(cat "$pf")
	[[ $pid =~ ^[1-9][0-9]*$ && $pid != "$PID" ]] || fail "pid file: '$pid'"
	pid_alive "$pid" || fail "exec'd process $pid is not running"
	wait_until 10 test -s "$B/rootfs/exec-inner.pid" || fail "exec'd process never ran"
	inner=$(cat "$B/rootfs/exec-inner.pid")
	nspid=$(awk '/^NSpid:/ { print $NF }' "/proc/$pid/status")
	assert_eq "$nspid" "$inner" "pid-file process is the exec'd process"
}

# ============================================================== terminal

@test "terminal: run with process.terminal gives the container a pty" {
	make_bundle "$B" sh -c 'test -t 0 && echo stdin-is-a-tty; test -t 1 && echo stdout-is-a-tty; tty'
	cfg "$B" '.process.terminal = true'
	ID=$(unique_id)
	local ts="$BATS_TEST_TMPDIR/typescript" cmd
	cmd=$(printf '%q ' "$BERTH" --root "$STATE" run --bundle "$B" "$ID")
	# script(1) gives berth a controlling pty; the typescript goes to a file
	run timeout -k 5 60 script -qefc "$cmd" "$ts" <"$BERTH_EMPTY"
	assert_status 0
	local out
	out=$(tr -d '\r' <"$ts")
	assert_contains "$out" stdin-is-a-tty "typescript"
	assert_contains "$out" stdout-is-a-tty "typescript"
	grep -qE '^(.*[^a-z])?/dev/pts/[0-9]+$' <<<"$out" || fail "tty is not a /dev/pts path: $out"
}

@test "terminal: create --console-socket sends the pty master over the socket" {
	make_bundle "$B" sh -c 'tty; echo hello-through-the-console; sleep 1'
	cfg "$B" '.process.terminal = true'
	local dir=$BATS_TEST_TMPDIR
	if ((${#dir} > 80)); then # sun_path is 108 bytes
		dir=$(mktemp -d /tmp/berth-sock.XXXXXX)
		berth_defer rm -rf "$dir"
	fi
	local sock="$dir/console.sock" out="$BATS_TEST_TMPDIR/console.out" recv rc=0
	start_console_receiver "$sock" "$out" 60
	recv=$BG_PID
	ID=$(unique_id)
	run --separate-stderr b create --console-socket "$sock" --bundle "$B" "$ID"
	assert_status 0
	run --separate-stderr b start "$ID"
	assert_status 0
	berth_wait_bg "$recv" 60 || rc=$?
	assert_eq "$rc" 0 "console receiver exit ($(cat "$BATS_TEST_TMPDIR/.console-receiver.log"))"
	local got
	got=$(tr -d '\r' <"$out")
	assert_contains "$got" hello-through-the-console "console output"
	grep -qE '^/dev/pts/[0-9]+$' <<<"$got" || fail "tty is not a /dev/pts path: $got"
}

# ================================================================= hooks

@test "hooks: all six run at their lifecycle points, in the right namespaces, with the state on stdin" {
	local H="$BATS_TEST_TMPDIR/hooks" hostsh=/bin/sh hostmnt
	mkdir -p "$H"
	hostmnt=$(readlink /proc/self/ns/mnt)
	make_bundle "$B" sh -c 'test -f /hook-startContainer.json && echo >/program-saw-hook; exec sleep 1000'
	# startContainer's path resolves in the container: this script exists
	# only in the rootfs
	local inside=/.berth-spec-start-hook.sh
	[[ ! -e $inside ]] || skip "$inside exists on the host"
	printf '#!/bin/sh\ncat >/hook-startContainer.json\nreadlink /proc/self/ns/mnt >/hook-startContainer.mntns\n' \
		>"$B/rootfs$inside"
	chmod 755 "$B/rootfs$inside"
	cfg "$B" '
		def h(n): {path: $sh, env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
			args: ["sh", "-c", "cat >\"$0/\(n).json\"; readlink /proc/self/ns/mnt >\"$0/\(n).mntns\"", $d]};
		.hooks = {
			prestart: [h("prestart")],
			createRuntime: [h("createRuntime")],
			createContainer: [h("createContainer")],
			startContainer: [{path: $inside, args: ["start-hook"], env: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}],
			poststart: [h("poststart")],
			poststop: [h("poststop")]
		}' --arg sh "$hostsh" --arg d "$H" --arg inside "$inside"

	ID=$(unique_id)
	run --separate-stderr b create --bundle "$B" "$ID"
	assert_status 0
	local pid ctrmnt= n
	pid=$(state_field "$ID" .pid)
	ctrmnt=$(readlink "/proc/$pid/ns/mnt" 2>&1) || ctrmnt=
	# state.pid is the pid as seen from the namespace the hook runs in
	for n in prestart createRuntime createContainer; do
		[[ -s $H/$n.json ]] || fail "$n hook did not run during create"
		assert_eq "$(jq -r .id "$H/$n.json")" "$ID" "$n: id in state"
	done
	assert_eq "$(jq -r .pid "$H/prestart.json")" "$pid" "prestart: pid in state"
	assert_eq "$(jq -r .pid "$H/createRuntime.json")" "$pid" "createRuntime: pid in state"
	assert_eq "$(jq -r .pid "$H/createContainer.json")" 1 "createContainer: pid in state (container's view)"
	for n in poststart poststop; do
		[[ ! -e $H/$n.json ]] || fail "$n hook ran during create"
	done
	[[ ! -e $B/rootfs/hook-startContainer.json ]] || fail "startContainer hook ran during create"
	assert_eq "$(cat "$H/prestart.mntns")" "$hostmnt" "prestart runs in the runtime mount namespace"
	assert_eq "$(cat "$H/createRuntime.mntns")" "$hostmnt" "createRuntime runs in the runtime mount namespace"
	[[ $(cat "$H/createContainer.mntns") != "$hostmnt" ]] || fail "createContainer ran in the runtime mount namespace"
	if [[ -n $ctrmnt ]]; then
		assert_eq "$(cat "$H/createContainer.mntns")" "$ctrmnt" "createContainer runs in the container mount namespace"
	fi

	run --separate-stderr b start "$ID"
	assert_status 0
	# poststart must have finished before start returned
	[[ -s $H/poststart.json ]] || fail "poststart hook had not run when start returned"
	assert_eq "$(jq -r .id "$H/poststart.json")" "$ID" "poststart: id in state"
	assert_eq "$(jq -r .pid "$H/poststart.json")" "$pid" "poststart: pid in state"
	assert_eq "$(cat "$H/poststart.mntns")" "$hostmnt" "poststart runs in the runtime mount namespace"
	local sc="$B/rootfs/hook-startContainer.json"
	[[ -s $sc ]] || fail "startContainer hook did not run (inside the container)"
	assert_eq "$(jq -r .id "$sc")" "$ID" "startContainer: id in state"
	assert_eq "$(jq -r .pid "$sc")" 1 "startContainer: pid in state (container's view)"
	[[ $(cat "$B/rootfs/hook-startContainer.mntns") != "$hostmnt" ]] || fail "startContainer ran in the runtime mount namespace"
	wait_until 10 test -e "$B/rootfs/program-saw-hook" || fail "the program did not see startContainer's output"
	[[ ! -e $H/poststop.json ]] || fail "poststop hook ran before delete"

	b kill "$ID" KILL >"$LOG" 2>&1 || fail "kill: $(cat "$LOG")"
	wait_until 10 status_is "$ID" stopped || fail "never stopped"
	run --separate-stderr b delete "$ID"
	assert_status 0
	[[ -s $H/poststop.json ]] || fail "poststop hook had not run when delete returned"
	assert_eq "$(jq -r .id "$H/poststop.json")" "$ID" "poststop: id in state"
	assert_eq "$(cat "$H/poststop.mntns")" "$hostmnt" "poststop runs in the runtime mount namespace"
}

# ============================================================= bad input
# Each: non-zero exit, exactly one line on stderr naming the problem, and no
# state dir, process or mount left behind.

@test "bad input: malformed config.json" {
	make_bundle "$B" true
	printf '{"ociVersion": "1.0.2", "process": {' >"$B/config.json"
	run_ctr
	assert_fails_with config.json
	assert_nothing_left "$ID" "$B"
}

@test "bad input: missing rootfs" {
	make_bundle "$B" true
	rm -rf "$B/rootfs"
	run_ctr
	assert_fails_with rootfs
	assert_nothing_left "$ID" "$B"
}

@test "bad input: unknown namespace type" {
	make_bundle "$B" true
	cfg "$B" '.linux.namespaces += [{"type": "bogus"}]'
	run_ctr
	assert_fails_with bogus
	assert_nothing_left "$ID" "$B"
}

@test "bad input: container id already in use" {
	make_bundle "$B" sleep 1000
	create_ctr
	local pid
	pid=$(state_field "$ID" .pid)
	local B2="$BATS_TEST_TMPDIR/bundle2"
	make_bundle "$B2" sleep 1000
	run --separate-stderr b create --bundle "$B2" "$ID"
	assert_fails_with "already exists"
	assert_eq "$(state_field "$ID" .status)" created "the first container's status"
	assert_eq "$(state_field "$ID" .pid)" "$pid" "the first container's pid"
	assert_bundle "$(state_field "$ID" .bundle)" "the first container's bundle"
	[[ -z $(mounts_under "$B2") ]] || fail "mounts left under $B2"
	[[ -z $(procs_in "$B2" "") ]] || fail "processes left in $B2: $(procs_in "$B2" "")"
}

@test "bad input: command missing in the container" {
	make_bundle "$B" /bin/nosuch
	run_ctr
	assert_fails_with 'exec "/bin/nosuch": no such file or directory in the container'
	assert_nothing_left "$ID" "$B"
}

@test "bad input: bundle directory without permission" {
	make_bundle "$B" true
	chmod 000 "$B"
	berth_defer chmod 755 "$B"
	local prefix=()
	if [[ $BERTH_AS == root ]]; then
		# root ignores modes; drop the capabilities that let it
		prefix=(setpriv --bounding-set -dac_override,-dac_read_search --)
		"${prefix[@]}" cat "$B/config.json" >"$LOG" 2>&1 && skip "cannot drop CAP_DAC_OVERRIDE here"
	fi
	ID=$(unique_id)
	run --separate-stderr "${prefix[@]}" timeout -k 5 "$BERTH_TIMEOUT" \
		"$BERTH" --root "$STATE" run --bundle "$B" "$ID" <"$BERTH_EMPTY"
	assert_fails_with "permission denied"
	chmod 755 "$B"
	assert_nothing_left "$ID" "$B"
}

@test "bad input: kill with an unknown signal" {
	start_ctr
	run --separate-stderr b kill "$ID" BOGUS
	assert_fails_with BOGUS
	assert_eq "$(state_field "$ID" .status)" running "status"
	pid_alive "$PID" || fail "container died"
}

@test "bad input: state of an unknown id" {
	local id
	id=$(unique_id nosuch)
	run --separate-stderr b state "$id"
	assert_fails_with "does not exist"
	[[ ! -e "$STATE/$id" ]] || fail "state dir created for $id"
}

@test "bad input: delete of an unknown id" {
	local id
	id=$(unique_id nosuch)
	run --separate-stderr b delete "$id"
	assert_fails_with "does not exist"
	[[ ! -e "$STATE/$id" ]] || fail "state dir created for $id"
}

# ======================================================== more of config.json

@test "run: linux.sysctl is written before /proc/sys becomes read-only" {
	make_bundle "$B" cat /proc/sys/kernel/shm_rmid_forced
	cfg "$B" '.linux.sysctl = {"kernel.shm_rmid_forced": "1"}'
	run_ctr
	assert_status 0
	assert_eq "$output" 1 "kernel.shm_rmid_forced in the container's ipc namespace"
}

@test "run: process.user.umask and domainname are applied" {
	make_bundle "$B" sh -c 'umask; cat /proc/sys/kernel/domainname'
	cfg "$B" '.process.user.umask = 63 | .domainname = "example.test"'
	run_ctr
	assert_status 0
	assert_eq "${lines[*]}" "0077 example.test" "umask / domainname"
}

@test "run: capabilities and noNewPrivileges reach the process" {
	make_bundle "$B" sh -c 'grep -E "^(CapBnd|CapEff|CapAmb|NoNewPrivs):" /proc/self/status'
	map_subid_ranges "$B"
	# As uid 1000 the kernel keeps only ambient capabilities across execve
	# (for uid 0 it would raise the effective set to the bounding set).
	cfg "$B" '.process.user = {"uid": 1000, "gid": 1000} | .process.noNewPrivileges = true
		| .process.capabilities = {"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"],
		   "permitted": ["CAP_KILL", "CAP_CHOWN"], "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]}'
	run_ctr
	assert_status 0
	# CAP_CHOWN is bit 0, CAP_KILL bit 5.
	assert_contains "$output" $'CapBnd:\t0000000000000021' "bounding set"
	assert_contains "$output" $'CapEff:\t0000000000000020' "effective set"
	assert_contains "$output" $'CapAmb:\t0000000000000020' "ambient set"
	assert_contains "$output" $'NoNewPrivs:\t1' "no_new_privs"
}

@test "run --no-pivot: MS_MOVE and chroot instead of pivot_root" {
	make_bundle "$B" sh -c 'cat /etc/passwd >/dev/null && test -x /bin/busybox && echo inside'
	run_ctr --no-pivot
	assert_status 0
	assert_eq "$output" inside "output"
}

@test "run --preserve-fds: passes exactly that many descriptors after stdio" {
	make_bundle "$B" sh -c 'read -r line <&3 && echo "fd3: $line"; if [ -e /proc/self/fd/4 ]; then echo "fd4 leaked"; else echo "fd4 closed"; fi'
	echo "kept" >"$BATS_TEST_TMPDIR/three"
	ID=$(unique_id)
	run --separate-stderr timeout -k 5 "$BERTH_TIMEOUT" "$BERTH" --root "$STATE" run --preserve-fds 1 --bundle "$B" "$ID" \
		3<"$BATS_TEST_TMPDIR/three" 4<"$BATS_TEST_TMPDIR/three" <"$BERTH_EMPTY"
	assert_status 0
	assert_eq "${lines[*]}" "fd3: kept fd4 closed" "descriptors in the container"
}

@test "run: namespaces given by path are joined" {
	start_ctr
	local first=$ID first_pid=$PID other="$BATS_TEST_TMPDIR/other"
	make_bundle "$other" hostname
	# The uts namespace of the first container; rootless, also its user
	# namespace, which owns that uts namespace.
	cfg "$other" 'del(.hostname) | .linux.namespaces |= map(if .type == "uts" then {type: "uts", path: $p} else . end)' \
		--arg p "/proc/$first_pid/ns/uts"
	if [[ $BERTH_AS == rootless ]]; then
		cfg "$other" 'del(.linux.uidMappings, .linux.gidMappings) | .linux.namespaces |= map(if .type == "user" then {type: "user", path: $p} else . end)' \
			--arg p "/proc/$first_pid/ns/user"
	fi
	run --separate-stderr b run --bundle "$other" "$(unique_id)"
	assert_status 0
	assert_eq "$output" "$(b exec "$first" hostname)" "hostname seen through the joined uts namespace"
}

@test "run: a foreground berth killed with SIGKILL takes its container with it" {
	make_bundle "$B" sh -c 'echo ready; exec sleep 1000'
	ID=$(unique_id)
	berth_bg "$LOG" "$BERTH" --root "$STATE" run --bundle "$B" "$ID"
	local runpid=$BG_PID pid
	wait_until 30 file_has "$LOG" ready || fail "container never got ready: $(cat "$LOG")"
	pid=$(state_field "$ID" .pid)
	[[ $pid =~ ^[1-9][0-9]*$ ]] || fail "no pid in state: '$pid'"
	kill -KILL "$runpid"
	wait_until 10 pid_dead "$pid" || fail "container init $pid outlived its berth"
	assert_eq "$(state_field "$ID" .status)" stopped "status after berth was killed"
	b delete "$ID" >"$LOG" 2>&1 || fail "delete failed: $(cat "$LOG")"
}

@test "exec -t: the process gets a terminal" {
	start_ctr
	local ts="$BATS_TEST_TMPDIR/typescript"
	run timeout -k 5 "$BERTH_TIMEOUT" script -qec "$BERTH --root $STATE exec -t $ID sh -c 'tty; test -t 0 && echo interactive'" "$ts"
	assert_status 0
	assert_contains "$(tr -d '\r' <"$ts")" /dev/pts/ "tty output"
	assert_contains "$(tr -d '\r' <"$ts")" interactive "test -t 0"
}

@test "ps: the table lists the container's processes only" {
	start_ctr
	run --separate-stderr b ps "$ID"
	assert_status 0
	assert_contains "${lines[0]}" PID "header"
	assert_eq "${#lines[@]}" 2 "header plus one process"
	assert_contains "${lines[1]}" " $PID " "the init's row"
}

@test "--log --log-format json: an error is one JSON line with level, msg and an RFC 3339 time" {
	local log="$BATS_TEST_TMPDIR/runtime.log"
	run --separate-stderr b --log "$log" --log-format json state nosuch
	[[ $status -ne 0 ]] || fail "state of an unknown id succeeded"
	assert_contains "$stderr" 'does not exist' "stderr"
	assert_eq "$(wc -l <"$log")" 1 "lines in the log"
	assert_eq "$(jq -r .level "$log")" error "level"
	assert_contains "$(jq -r .msg "$log")" 'container "nosuch" does not exist' "msg"
	[[ $(jq -r .time "$log") =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]] || fail "time: $(jq -r .time "$log")"
}

@test "features: reports the hooks, namespaces and mount options berth knows" {
	run --separate-stderr b features
	assert_status 0
	assert_eq "$(jq -r '.hooks | join(",")' <<<"$output")" "prestart,createRuntime,createContainer,startContainer,poststart,poststop" "hooks"
	assert_contains "$(jq -r '.linux.namespaces | join(",")' <<<"$output")" user "namespaces"
	assert_contains "$(jq -r '.mountOptions | join(",")' <<<"$output")" rbind "mount options"
}

# ================================================================= seccomp

@test "seccomp: the default profile of berth spec is loaded for run and for exec" {
	make_bundle "$B" sh -c 'grep -E "^Seccomp(_filters)?:" /proc/self/status; exec sleep 1000'
	[[ $(jq -r '.linux.seccomp.defaultAction' "$B/config.json") == SCMP_ACT_ERRNO ]] || fail "berth spec wrote no seccomp profile"
	create_ctr
	b start "$ID" >"$LOG" 2>&1 || fail "start failed: $(cat "$LOG")"
	run --separate-stderr b exec "$ID" grep -E '^Seccomp(_filters)?:' /proc/self/status
	assert_status 0
	assert_contains "$output" $'Seccomp:\t2' "exec'd process is filtered"
	assert_contains "$output" $'Seccomp_filters:\t1' "exactly one filter"
}

@test "seccomp: actions with errnoRet, argument conditions and unknown names" {
	make_bundle "$B" sh -c 'mkdir /tmp/a; echo "mkdir=$?"; rmdir /tmp; echo "rmdir=$?"
		kill -USR2 $$ 2>/dev/null; echo "usr2=$?"; trap "" USR1; kill -USR1 $$; echo "usr1=$?"'
	cfg "$B" '.linux.seccomp = {
		defaultAction: "SCMP_ACT_ALLOW",
		syscalls: [
			{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_ERRNO", errnoRet: 13},
			{names: ["rmdir"], action: "SCMP_ACT_ERRNO"},
			{names: ["kill"], action: "SCMP_ACT_ERRNO", errnoRet: 1, args: [{index: 1, value: 10, op: "SCMP_CMP_EQ"}]},
			{names: ["no_such_syscall_anywhere"], action: "SCMP_ACT_KILL"}
		]}'
	cfg "$B" '.process.args = ["sh", "-c", "trap \"\" USR2; " + .process.args[2]]'
	run_ctr
	assert_status 0
	assert_contains "$stderr" "Permission denied" "mkdir refused with errnoRet 13 (EACCES)"
	assert_contains "$output" "mkdir=1" "mkdir failed"
	assert_contains "$output" "rmdir=1" "rmdir failed (default errno EPERM)"
	assert_contains "$output" "usr2=0" "kill with another signal is allowed"
	assert_contains "$output" "usr1=1" "kill with SIGUSR1 (arg 1 == 10) is refused"
}

@test "seccomp: SCMP_ACT_NOTIFY hands the listener fd and the state to listenerPath" {
	local sock="$BATS_TEST_TMPDIR/listener.sock" got="$BATS_TEST_TMPDIR/listener.json"
	berth_bg "$BATS_TEST_TMPDIR/.listener.log" python3 -c '
import array, socket, sys, os
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(1); s.settimeout(30)
c, _ = s.accept()
fds = array.array("i")
msg, anc, flags, addr = c.recvmsg(65536, socket.CMSG_LEN(4 * fds.itemsize))
for level, kind, data in anc:
    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
        fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
open(sys.argv[2], "w").write(msg.decode() + "\n" + ("fd" if len(fds) == 1 else "nofd") + "\n")
for fd in fds: os.close(fd)   # no supervisor: notified calls now fail with ENOSYS
' "$sock" "$got"
	wait_until 10 test -S "$sock" || fail "listener did not start: $(cat "$BATS_TEST_TMPDIR/.listener.log")"
	make_bundle "$B" sh -c 'sleep 1; mkdir /tmp/n; echo "mkdir=$?"'
	cfg "$B" '.linux.seccomp = {defaultAction: "SCMP_ACT_ALLOW", listenerPath: $sock, listenerMetadata: "hello",
		syscalls: [{names: ["mkdir", "mkdirat"], action: "SCMP_ACT_NOTIFY"}]}' --arg sock "$sock"
	run_ctr
	assert_status 0
	assert_contains "$output" "mkdir=1" "the notified mkdir failed once the listener let go"
	wait_until 10 test -s "$got" || fail "listener got nothing"
	local message
	message=$(head -n 1 "$got")
	assert_eq "$(jq -r '.fds | join(",")' <<<"$message")" seccompFd "fds"
	assert_eq "$(jq -r .metadata <<<"$message")" hello "metadata"
	assert_eq "$(jq -r .state.id <<<"$message")" "$ID" "state.id"
	[[ $(jq -r .pid <<<"$message") =~ ^[1-9][0-9]*$ ]] || fail "pid: $message"
	assert_eq "$(sed -n 2p "$got")" fd "one descriptor passed"
}

@test "seccomp: a profile berth cannot compile is refused before anything is created" {
	make_bundle "$B" true
	cfg "$B" '.linux.seccomp = {defaultAction: "SCMP_ACT_SOMETIMES"}'
	run_ctr
	assert_fails_with 'linux.seccomp: unknown action "SCMP_ACT_SOMETIMES"'
	assert_nothing_left "$ID" "$B"
}

@test "run: process.oomScoreAdj is applied" {
	make_bundle "$B" cat /proc/self/oom_score_adj
	cfg "$B" '.process.oomScoreAdj = 500'
	run_ctr
	assert_status 0
	assert_eq "$output" 500 "oom_score_adj"
}

@test "bad input: LSM labels without the LSM, linux.personality and linux.intelRdt are refused" {
	make_bundle "$B" true
	local cases=(
		'.process.apparmorProfile = "berth-test"|AppArmor is not enabled|/sys/module/apparmor/parameters/enabled'
		'.process.selinuxLabel = "system_u:system_r:container_t:s0"|SELinux is not enabled|/sys/fs/selinux/enforce'
		'.linux.personality = {domain: "LINUX32"}|linux.personality is not supported|'
		'.linux.intelRdt = {closID: "x"}|linux.intelRdt is not supported|'
	)
	local entry filter phrase lsm
	for entry in "${cases[@]}"; do
		IFS='|' read -r filter phrase lsm <<<"$entry"
		if [[ -n $lsm && -e $lsm && $(cat "$lsm" 2>/dev/null) != N ]]; then
			echo "# $lsm: that LSM runs on this host; case not applicable" >&3
			continue
		fi
		cp "$B/config.json" "$B/config.orig"
		cfg "$B" "$filter"
		run_ctr
		assert_fails_with "$phrase"
		assert_nothing_left "$ID" "$B"
		mv "$B/config.orig" "$B/config.json"
	done
}

@test "bad input: exec whose console socket cannot be reached fails and leaves no process behind" {
	start_ctr
	run --separate-stderr b exec -t --console-socket "$BATS_TEST_TMPDIR/no-such.sock" "$ID" sleep 300
	assert_fails_with "console socket"
	run --separate-stderr b ps -f json "$ID"
	assert_status 0
	assert_eq "$output" "[$PID]" "processes in the container after the failed exec"
}
