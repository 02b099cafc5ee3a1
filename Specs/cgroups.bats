#!/usr/bin/env bats
#
# End-to-end spec of berth's cgroup v2 support (Specs/cgroups.md): limits,
# update, pause/resume, events, ps/kill/delete through the group, device
# rules, cgroupsPath, and what a host without the controllers does.
#
# Two kinds of tests, by name:
#   "v2: ..."           need cgroup v2 with the controllers (and, rootless, a
#                       delegated subtree): scripts/test runs them inside
#                       scripts/vm-test, as root and with --user (delegated
#                       subtree at $BERTH_VM_CGROUP)
#   "hybrid host: ..."  need a host whose cgroup v2 lacks the memory
#                       controller, like the development and CI machines:
#                       scripts/test runs them on the host
# Run directly, a test whose environment is missing skips and says why.

bats_require_minimum_version 1.7.0

load helpers

setup_file() {
	berth_setup_file
}

setup() {
	berth_setup
	B="$BATS_TEST_TMPDIR/bundle"
	LOG="$BATS_TEST_TMPDIR/log"
	if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
		V2=/sys/fs/cgroup
	elif [[ -f /sys/fs/cgroup/unified/cgroup.controllers ]]; then
		V2=/sys/fs/cgroup/unified
	else
		V2=
	fi
}

teardown() {
	local rc=0
	berth_sweep_containers || rc=1
	berth_teardown || rc=1
	berth_sweep_mounts || rc=1
	return $rc
}

has_controller() { [[ -n $V2 ]] && grep -qw "$1" "$V2/cgroup.controllers"; }

# need_v2 CONTROLLER... — skip unless cgroup v2 has them and, rootless, a
# delegated subtree is there to use.
need_v2() {
	local c
	for c in "$@"; do
		has_controller "$c" || skip "needs the cgroup v2 \"$c\" controller, which this host lacks (scripts/test runs the v2 tests in scripts/vm-test)"
	done
	if [[ $BERTH_AS == rootless && -z ${BERTH_VM_CGROUP:-} ]]; then
		skip "rootless: needs a delegated cgroup subtree (BERTH_VM_CGROUP, as scripts/vm-test --user gives)"
	fi
}

need_hybrid() {
	[[ -n $V2 ]] || skip "no cgroup v2 hierarchy is mounted here"
	! has_controller memory || skip "this host's cgroup v2 has the memory controller; the refusal is for hosts without it"
}

root_only() { [[ $BERTH_AS == root ]] || skip "$1"; }

# group_of PID — the host directory of PID's cgroup v2 group.
group_of() {
	local path
	path=$(sed -n 's/^0:://p' "/proc/$1/cgroup") || return 1
	echo "$V2${path%/}"
}

# The group berth makes by default: <base>/berth/<id>, the base being the
# root as root and the delegated subtree rootless.
default_group() {
	if [[ $BERTH_AS == root ]]; then echo "$V2/berth/$1"; else echo "${BERTH_VM_CGROUP}/berth/$1"; fi
}

# Rootless bundles (`berth spec --rootless`, like runc's) have no cgroup
# namespace and no /sys/fs/cgroup mount: add both, so the container sees
# its group as a root bundle's does.
CGROUP_VIEW='.linux.namespaces |= (map(select(.type != "cgroup")) + [{type: "cgroup"}])
	| .mounts |= (map(select(.destination != "/sys/fs/cgroup")) + [{destination: "/sys/fs/cgroup", type: "cgroup",
	  source: "cgroup", options: ["nosuid", "noexec", "nodev", "relatime", "ro"]}])'

# start_ctr JQ-FILTER ARG... — bundle $B with FILTER applied to config.json,
# running ARG..., created and started as $ID; sets PID and GROUP.
start_ctr() {
	local filter=$1
	shift
	rm -rf "$B"
	make_bundle "$B" "$@"
	cfg "$B" "$CGROUP_VIEW | $filter"
	ID=$(unique_id)
	b create --bundle "$B" "$ID" >"$LOG" 2>&1 || fail "create failed: $(cat "$LOG")"
	b start "$ID" >"$LOG" 2>&1 || fail "start failed: $(cat "$LOG")"
	PID=$(state_field "$ID" .pid)
	GROUP=$(group_of "$PID")
}

# run_ctr JQ-FILTER ARG... — foreground `berth run` of such a bundle.
run_ctr() {
	local filter=$1
	shift
	rm -rf "$B"
	make_bundle "$B" "$@"
	cfg "$B" "$CGROUP_VIEW | $filter"
	ID=$(unique_id)
	run --separate-stderr b run --bundle "$B" "$ID"
}

# lines_at_least FILE N / number_above FILE N — for wait_until, which
# expands its arguments once: the file is read on every poll.
lines_at_least() { [[ -f $1 ]] && (($(wc -l <"$1") >= $2)); }
number_above() { [[ -s $1 ]] && (($(cat "$1") > $2)); }

assert_group_gone() {
	[[ ! -e $1 ]] || fail "cgroup $1 is left behind: $(ls "$1" | head -3)"
}

# ------------------------------------------------------------------ v2 tests

@test "v2: each container gets its own group with its limits, which delete removes" {
	need_v2 memory pids
	start_ctr '.linux.resources.memory.limit = 33554432 | .linux.resources.pids.limit = 40' sleep 1000
	assert_eq "$GROUP" "$(default_group "$ID")" "the container's cgroup"
	assert_eq "$(cat "$GROUP/memory.max")" 33554432 "memory.max"
	assert_eq "$(cat "$GROUP/pids.max")" 40 "pids.max"
	# Inside: its own group at /sys/fs/cgroup, and a cgroup namespace rooted there.
	run --separate-stderr b exec "$ID" sh -c 'cat /proc/self/cgroup /sys/fs/cgroup/memory.max'
	assert_status 0
	assert_eq "$output" $'0::/\n33554432' "what the container sees"
	# exec'd processes join the group too
	b exec -d "$ID" sleep 999
	wait_until 5 lines_at_least "$GROUP/cgroup.procs" 2
	b delete --force "$ID"
	assert_group_gone "$GROUP"
	pid_dead "$PID"
}

@test "v2: memory.max is enforced: an allocation beyond it is OOM-killed and berth reports it" {
	need_v2 memory
	# 16 MiB of memory (and no swap); the shell tries to hold 48 MB.
	run_ctr '.linux.resources.memory = {limit: 16777216, swap: 16777216}' \
		sh -c 'x=$(head -c 48000000 /dev/zero | tr "\0" a); echo survived'
	assert_status 137
	assert_not_contains "$output" survived
	assert_contains "$stderr" "OOM killer" "berth's report"
	assert_contains "$stderr" "memory.max 16777216"
	# A detached container: `state` says so after it died.
	start_ctr '.linux.resources.memory = {limit: 16777216, swap: 16777216}' \
		sh -c 'sleep 0.5; x=$(head -c 48000000 /dev/zero | tr "\0" a); echo survived'
	wait_until 60 status_is "$ID" stopped
	assert_eq "$(state_field "$ID" .oomKilled)" true "state .oomKilled"
	b delete "$ID"
	assert_group_gone "$GROUP"
}

@test "v2: pids.max stops forks beyond the limit" {
	need_v2 pids
	# The subshell forks sleeps until the kernel refuses (ash then exits);
	# the outer shell reads the files with builtins, which need no fork.
	run_ctr '.linux.resources.pids.limit = 5' \
		sh -c '(for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & done) 2>&1; read c </sys/fs/cgroup/pids.current; read e </sys/fs/cgroup/pids.events; echo "current $c, $e"'
	assert_status 0
	assert_contains "$output" "can't fork"
	[[ $output =~ current\ ([0-9]+),\ max\ ([0-9]+) ]] || fail "no pids figures: $output"
	((BASH_REMATCH[1] <= 5 && BASH_REMATCH[2] >= 1)) || fail "pids.max did not hold or counted no refusal: $output"
}

@test "v2: cpu.max throttles a busy container (cpu.stat nr_throttled grows)" {
	need_v2 cpu
	run_ctr '.linux.resources.cpu = {quota: 10000, period: 100000}' \
		sh -c 'cat /sys/fs/cgroup/cpu.max; (while :; do :; done) & sleep 2; kill $!; cat /sys/fs/cgroup/cpu.stat'
	assert_status 0
	assert_contains "$output" "10000 100000"
	[[ $output =~ nr_throttled\ ([0-9]+) ]] && ((BASH_REMATCH[1] > 0)) || fail "not throttled: $output"
}

@test "v2: io.max limits writes to a loop device" {
	need_v2 io
	root_only "attaching a loop device needs root"
	truncate -s 16M "$BATS_TEST_TMPDIR/disk"
	local loop major minor
	loop=$(losetup -f --show "$BATS_TEST_TMPDIR/disk") || skip "no loop device here: $loop"
	berth_defer losetup -d "$loop"
	major=$((0x$(stat -c %t "$loop"))) minor=$((0x$(stat -c %T "$loop")))
	# 1 MiB of direct writes: unthrottled it takes a moment; at 64 KiB/s it
	# would take 16 s, so `timeout 3` stops it.
	local write='timeout 3 dd if=/dev/zero of=/dev/xdisk bs=64k count=16 oflag=direct 2>&1; echo "rc=$?"'
	local device='.linux.devices = [{path: "/dev/xdisk", type: "b", major: $ma, minor: $mi}]'
	make_bundle "$B" sh -c "$write"
	cfg "$B" "$device" --argjson ma "$major" --argjson mi "$minor"
	ID=$(unique_id)
	run --separate-stderr b run --bundle "$B" "$ID"
	assert_status 0
	assert_contains "$output" "rc=0" "the unthrottled write"
	cfg "$B" '.linux.resources.blockIO.throttleWriteBpsDevice = [{major: $ma, minor: $mi, rate: 65536}]' --argjson ma "$major" --argjson mi "$minor"
	ID=$(unique_id)
	run --separate-stderr b run --bundle "$B" "$ID"
	assert_status 0
	assert_not_contains "$output" "rc=0" "the throttled write"
}

@test "v2: update changes live limits (flags and --resources), bad values are refused" {
	need_v2 memory pids cpu
	start_ctr '.linux.resources.memory.limit = 33554432 | .linux.resources.pids.limit = 40' sleep 1000
	b update --memory 64m --pids-limit 20 --cpus 0.5 "$ID"
	assert_eq "$(cat "$GROUP/memory.max")" 67108864 "memory.max after update"
	assert_eq "$(cat "$GROUP/pids.max")" 20 "pids.max after update"
	assert_eq "$(cat "$GROUP/cpu.max")" "50000 100000" "cpu.max after update"
	echo '{"pids": {"limit": 7}, "unified": {"memory.high": "50331648"}}' >"$BATS_TEST_TMPDIR/r.json"
	b update -r "$BATS_TEST_TMPDIR/r.json" "$ID"
	run --separate-stderr b exec "$ID" cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.high
	assert_eq "$output" $'7\n50331648' "limits seen inside"
	run --separate-stderr b update --memory lots "$ID"
	assert_fails_with '--memory "lots"'
	run --separate-stderr b update --memory-swap 16m "$ID"
	assert_fails_with "memory.swap"
	assert_eq "$(cat "$GROUP/memory.max")" 67108864 "memory.max after refused updates"
}

@test "v2: pause freezes the container (no progress) and resume continues" {
	need_v2
	start_ctr '.' sh -c 'i=0; while :; do i=$((i + 1)); echo $i >/tmp/count; sleep 0.1; done'
	local count="$B/rootfs/tmp/count" a c
	wait_until 10 test -s "$count"
	b pause "$ID"
	assert_eq "$(state_field "$ID" .status)" paused "status after pause"
	assert_eq "$(cat "$GROUP/cgroup.freeze")" 1 "cgroup.freeze"
	a=$(cat "$count")
	sleep 1
	assert_eq "$(cat "$count")" "$a" "the counter while paused"
	run --separate-stderr b pause "$ID"
	assert_fails_with "not running"
	b resume "$ID"
	assert_eq "$(state_field "$ID" .status)" running "status after resume"
	wait_until 10 number_above "$count" "$a"
	run --separate-stderr b resume "$ID"
	assert_fails_with "not paused"
	# A paused container can be force-deleted; nothing is left.
	b pause "$ID"
	b delete --force "$ID"
	assert_group_gone "$GROUP"
	pid_dead "$PID"
}

@test "v2: events --stats prints runc's JSON, events streams it" {
	need_v2 memory pids cpu
	start_ctr '.linux.resources.memory.limit = 33554432' sleep 1000
	run --separate-stderr b events --stats "$ID"
	assert_status 0
	assert_eq "$(jq -r .type <<<"$output")" stats ".type"
	assert_eq "$(jq -r .id <<<"$output")" "$ID" ".id"
	assert_eq "$(jq -r .data.memory.usage.limit <<<"$output")" 33554432 ".data.memory.usage.limit"
	jq -e '.data.memory.usage.usage > 0 and .data.pids.current >= 1 and .data.cpu.usage.total > 0' <<<"$output" >/dev/null ||
		fail "stats without usage: $output"
	# The stream: a line per interval until the container stops.
	berth_bg "$BATS_TEST_TMPDIR/events" "$BERTH" --root "$STATE" events --interval 200ms "$ID"
	wait_until 20 lines_at_least "$BATS_TEST_TMPDIR/events" 2
	b kill "$ID" KILL
	berth_wait_bg "$BG_PID" 20 || fail "events did not end with the container: $(tail -2 "$BATS_TEST_TMPDIR/events")"
}

@test "v2: ps lists the group's processes; kill --all and delete use the group" {
	need_v2
	start_ctr '.' sh -c 'sleep 1000 & sleep 1000 & wait'
	wait_until 10 lines_at_least "$GROUP/cgroup.procs" 3
	run --separate-stderr b ps -f json "$ID"
	assert_eq "$(jq length <<<"$output")" 3 "processes in ps"
	assert_eq "$(jq -c 'sort' <<<"$output")" "$(sort -n "$GROUP/cgroup.procs" | jq -sc 'sort')" "ps and cgroup.procs"
	b kill --all "$ID" KILL
	wait_until 10 status_is "$ID" stopped
	assert_eq "$(cat "$GROUP/cgroup.procs")" "" "processes left in the group"
	b delete "$ID"
	assert_group_gone "$GROUP"
}

@test "v2: linux.cgroupsPath is honoured, plain and slice:prefix:name, and parents berth made are removed" {
	need_v2 pids
	local base=$V2
	[[ $BERTH_AS == root ]] || base=$BERTH_VM_CGROUP
	local tag=t$$
	start_ctr ".linux.cgroupsPath = \"$tag/inner/c1\" | .linux.resources.pids.limit = 9" sleep 1000
	[[ $BERTH_AS == root ]] && assert_eq "$GROUP" "$V2/$tag/inner/c1" "relative path as root" || assert_eq "$GROUP" "$base/$tag/inner/c1" "relative path rootless"
	assert_eq "$(cat "$GROUP/pids.max")" 9 "pids.max"
	b delete --force "$ID"
	assert_group_gone "$base/$tag"
	make_bundle "$B.2" sleep 1000
	cfg "$B.2" ".linux.cgroupsPath = \"$tag-x.slice:pre:c2\""
	ID=$(unique_id)
	b --systemd-cgroup run -d --bundle "$B.2" "$ID"
	GROUP=$(group_of "$(state_field "$ID" .pid)")
	assert_eq "$GROUP" "$base/$tag.slice/$tag-x.slice/pre-c2.scope" "systemd path"
	b delete --force "$ID"
	assert_group_gone "$base/$tag.slice"
}

@test "v2: in a delegated unit's group, berth moves itself to a leaf and puts containers below it" {
	need_v2 pids
	root_only "rootless, every v2 test already runs in a delegated subtree"
	# A unit with Delegate=yes, as systemd marks it: its own group with the
	# trusted.delegate attribute, and berth as its only process.
	local unit=$V2/berth-test-$$.service
	mkdir "$unit"
	berth_defer rmdir "$unit"
	berth_defer rmdir "$unit/berth"
	berth_defer rmdir "$unit/supervisor"
	python3 -c 'import os, sys; os.setxattr(sys.argv[1], "trusted.delegate", b"1")' "$unit"
	rm -rf "$B"
	make_bundle "$B" sleep 1000
	cfg "$B" '.linux.resources.pids.limit = 12'
	ID=$(unique_id)
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' - "$unit" \
		"$BERTH" --root "$STATE" run -d --bundle "$B" "$ID" <"$BERTH_EMPTY" >"$LOG" 2>&1 || fail "run -d failed: $(cat "$LOG")"
	GROUP=$(group_of "$(state_field "$ID" .pid)")
	assert_eq "$GROUP" "$unit/berth/$ID" "the container's group"
	assert_eq "$(cat "$GROUP/pids.max")" 12 "pids.max"
	[[ -d $unit/supervisor ]] || fail "berth did not move itself into $unit/supervisor"
	assert_eq "$(cat "$unit/cgroup.procs")" "" "processes left in the unit's own group"
	b delete --force "$ID"
	assert_group_gone "$GROUP"
}

@test "v2: device rules are enforced by an eBPF program" {
	need_v2
	root_only "rootless containers get no device program: the kernel lets only privileged users attach one"
	# berth spec's rules deny every device but the default ones. (The node
	# goes in the container's /dev: the bundle may be on a nodev mount.)
	run_ctr '.' sh -c 'mknod /dev/xd b 7 0 && head -c 1 /dev/xd; echo rc=$?'
	assert_contains "$output$stderr" "Operation not permitted"
	run_ctr '.linux.resources.devices += [{allow: true, type: "b", major: 7, minor: 0, access: "r"}]' \
		sh -c 'mknod /dev/xd b 7 0 && head -c 1 /dev/xd; echo rc=$?'
	assert_not_contains "$output$stderr" "Operation not permitted"
	assert_contains "$output" "rc=0"
}

@test "v2: settings cgroup v2 cannot express are refused and nothing is left" {
	need_v2 memory
	run_ctr '.linux.resources.memory.disableOOMKiller = true' true
	assert_fails_with "disableOOMKiller"
	assert_group_gone "$(default_group "$ID")"
	[[ ! -e $STATE/$ID ]] || fail "state of a refused container is left"
	run_ctr '.linux.resources.cpu.cpus = "0-4095"' true
	assert_fails_with 'linux.resources.cpu.cpus'
	assert_group_gone "$(default_group "$ID")"
}

# ----------------------------------------------------------- hybrid host tests

@test "hybrid host: a run without limits works, grouped in cgroup v2 as root" {
	need_hybrid
	start_ctr '.' sleep 1000
	if [[ $BERTH_AS == root ]]; then
		assert_eq "$GROUP" "$V2/berth/$ID" "the container's group"
	else
		assert_eq "$GROUP" "$(group_of $$)" "rootless without a delegated subtree: berth's own group"
	fi
	b delete --force "$ID"
	assert_group_gone "$V2/berth/$ID"
}

@test "hybrid host: a limit whose controller is missing is refused before anything is created" {
	need_hybrid
	local before
	before=$(find "$V2" -type d | sort)
	run_ctr '.linux.resources.memory.limit = 33554432' true
	assert_fails_with "linux.resources.memory.limit needs the cgroup v2 \"memory\" controller, which this host lacks (cgroup v2 at $V2 has: "
	[[ ! -e $STATE/$ID ]] || fail "state of a refused container is left"
	assert_eq "$(find "$V2" -type d | sort)" "$before" "cgroup directories"
	run_ctr '.linux.resources.pids.limit = 10' true
	assert_fails_with '"pids" controller, which this host lacks'
	run_ctr '.linux.resources.cpu.quota = 10000' true
	assert_fails_with '"cpu" controller, which this host lacks'
}

@test "hybrid host: pause and resume work through cgroup.freeze" {
	need_hybrid
	root_only "rootless berth has no delegated cgroup on this host, so no group to freeze"
	start_ctr '.' sleep 1000
	b pause "$ID"
	assert_eq "$(state_field "$ID" .status)" paused
	b resume "$ID"
	assert_eq "$(state_field "$ID" .status)" running
}

@test "hybrid host: run --cgroups: disabled runs without a group of its own and refuses limits; enabled and no-conmon run; anything else is refused" {
	[[ -n $V2 ]] || skip "no cgroup v2 hierarchy is mounted here"
	local store="$BATS_TEST_TMPDIR/store" runroot="$BATS_TEST_TMPDIR/engine-run"
	eng() { "$BERTH" --root "$store" --runroot "$runroot" "$@" <"$BERTH_EMPTY"; }
	tar -C "$BERTH_ROOTFS" -czf "$BATS_TEST_TMPDIR/busybox.tar.gz" .
	eng import -q -c 'CMD ["sh"]' "$BATS_TEST_TMPDIR/busybox.tar.gz" busybox >/dev/null
	berth_defer "$BERTH" --root "$store" unshare rm -rf "$store"
	# disabled: the container stays in the group of the berth that runs it (the monitor's).
	eng run -d --name nogroup --cgroups=disabled --network none busybox sleep 60 >/dev/null
	pid=$(eng inspect --format '{{.State.Pid}}' nogroup)
	monitor=$(eng inspect --format '{{.State.ConmonPid}}' nogroup)
	assert_eq "$(group_of "$pid")" "$(group_of "$monitor")" "the container's group"
	eng rm -f nogroup >/dev/null
	run --separate-stderr eng run --rm --cgroups disabled --network none --pids-limit 10 busybox true
	assert_status 125
	assert_fails_with "cgroups are disabled"
	run --separate-stderr eng run --rm --cgroups sometimes busybox true
	assert_status 125
	assert_fails_with '--cgroups "sometimes": expected enabled, disabled, split or no-conmon'
	for mode in enabled no-conmon; do
		run eng run --rm --cgroups "$mode" --network none busybox echo "$mode ok"
		assert_status 0
		assert_eq "$output" "$mode ok"
	done
	run eng ps -a -q
	assert_eq "$output" ""
}

@test "hybrid host: rootless pause without a delegated cgroup says why" {
	need_hybrid
	[[ $BERTH_AS == rootless ]] || skip "as root berth always has a group here"
	start_ctr '.' sleep 1000
	run --separate-stderr b pause "$ID"
	assert_fails_with "it has no cgroup"
}

@test "v2: run IMAGE --memory/--cpus/--pids-limit: the engine's flags are the container's limits, and an OOM kill is recorded" {
	need_v2 memory pids cpu
	local store="$BATS_TEST_TMPDIR/store" runroot="$BATS_TEST_TMPDIR/engine-run"
	eng() { "$BERTH" --root "$store" --runroot "$runroot" "$@" <"$BERTH_EMPTY"; }
	tar -C "$BERTH_ROOTFS" -czf "$BATS_TEST_TMPDIR/busybox.tar.gz" .
	eng import -q -c 'CMD ["sh"]' "$BATS_TEST_TMPDIR/busybox.tar.gz" busybox >/dev/null
	berth_defer "$BERTH" --root "$store" unshare rm -rf "$store"
	# Read from the host: a rootless container has no cgroup namespace of its own
	# and sees the host's /sys (see Specs/containers.md).
	eng run -d --name limited --memory 64m --pids-limit 50 --cpus 0.5 busybox sleep 60 >/dev/null
	pid=$(eng inspect --format '{{.State.Pid}}' limited)
	group=$V2$(sed -n 's/^0:://p' "/proc/$pid/cgroup")
	assert_eq "$(cat "$group/memory.max") $(cat "$group/pids.max") $(cat "$group/cpu.max")" "67108864 50 50000 100000"
	eng rm -f limited >/dev/null
	[[ ! -d $group ]] || fail "the group $group outlived rm -f"
	# The VM has no swap: 16 MiB of memory is all it gets.
	eng run -d --name hog --memory 16m busybox sh -c 'x=$(head -c 48000000 /dev/zero | tr "\0" a); echo survived' >/dev/null
	wait_until 60 bash -c "[[ \$(\"$BERTH\" --root \"$store\" --runroot \"$runroot\" inspect --format '{{.State.Status}}' hog) == exited ]]"
	run eng inspect --format '{{.State.OOMKilled}} {{.State.ExitCode}}' hog
	assert_eq "$output" "true 137"
	eng rm -f hog >/dev/null
	[[ -z $(ls -A "$runroot" | grep -v '^@' || true) ]] || fail "runtime state left: $(ls -A "$runroot")"
}
