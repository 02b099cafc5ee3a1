#!/usr/bin/env bats
#
# End-to-end spec of berth under a real systemd (Specs/systemd.md): a
# foreground `berth run` as the main process of a service, as root in the
# system manager and rootless in a lingering user's manager.
#
# The tests need systemd as PID 1 and install units, so they run as root
# inside scripts/vm-systemd (the host's systemd 252 booted in a QEMU VM with a
# pure cgroup v2 hierarchy), in one boot for the whole file; scripts/test runs
#   scripts/vm-systemd --linger berth-ci -- env BERTH=... bats --tap Specs/systemd.bats
# Anywhere else every test skips and says why.
#
# Besides Specs/helpers.bash's environment: BERTH_SYSTEMD_USER, the lingering
# user of the rootless test (default: the first of the --linger users,
# BERTH_VM_LINGER), and BERTH_USER_BIN, the binary that user runs (default
# BERTH; the user must be able to execute it).

bats_require_minimum_version 1.7.0

load helpers

pid1() { ps -o comm= -p 1 2>/dev/null; }

setup_file() {
	[[ $(pid1) == systemd && $(id -u) == 0 ]] || return 0
	engine_setup_file
}

setup() {
	[[ $(pid1) == systemd ]] ||
		skip "needs systemd as PID 1 (here PID 1 is '$(pid1)'): scripts/test runs this file in scripts/vm-systemd"
	[[ $(id -u) == 0 ]] || skip "needs root: it installs units (the rootless test uses a lingering user's manager)"
	if [[ $BATS_TEST_DESCRIPTION == rootless:* ]]; then
		berth_setup # the user's store is made by the test
		RUNROOT=$BATS_TEST_TMPDIR/run
	else
		engine_setup
	fi
	UNIT=berth-spec-$BATS_TEST_NUMBER-$$.service
	CLEANUP=()
}

teardown() {
	[[ -n ${UNIT:-} ]] || return 0
	local rc=0 i
	for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUP[i]}" || { echo "teardown: '${CLEANUP[i]}' failed" >&2; rc=1; }
	done
	engine_teardown || rc=1
	return $rc
}

# The container every unit runs: it exits 7 on SIGTERM, so a stop that
# reached it shows in the unit's ExecMainStatus.
LOOP='trap "exit 7" TERM; while :; do sleep 0.1; done'

# service_unit BIN STORE RUNROOT [LINE...] — a unit whose main process is a
# foreground `berth run` of container "svc" (the loop), with the lines
# Specs/systemd.md recommends, then LINE... (more [Service] settings).
service_unit() {
	local bin=$1 store=$2 runroot=$3 line
	shift 3
	cat <<EOF
[Unit]
Description=berth spec $BATS_TEST_NUMBER: a container as a service

[Service]
Type=exec
ExecStart=$bin --root $store --runroot $runroot run --rm --replace --name svc --network none busybox sh -c '$LOOP'
Delegate=yes
KillMode=mixed
TimeoutStopSec=20
EOF
	for line in "$@"; do echo "$line"; done
}

# system_unit [LINE...] — install $UNIT for root's store in the system
# manager; it is stopped and removed at teardown.
system_unit() {
	service_unit "$BERTH" "$STATE" "$RUNROOT" "$@" >"/run/systemd/system/$UNIT"
	CLEANUP+=("remove_system_unit $UNIT")
	systemctl daemon-reload
}

remove_system_unit() {
	timeout 60 systemctl stop "$1" || true
	systemctl reset-failed "$1" 2>/dev/null || true
	rm -f "/run/systemd/system/$1"
	systemctl daemon-reload
}

# journal — the unit's last log lines, for failure messages.
journal() { journalctl -o cat --no-pager -n 30 "$@" 2>&1; }

svc_running() { [[ $(e inspect --format '{{.State.Status}}' svc 2>/dev/null) == running ]]; }

# start_system_unit — start $UNIT, wait for its container; sets UNIT_CG
# (the unit's group), MAIN (berth's pid), PID (the container's), CTR_ID and
# CTR_CG (the container's group).
start_system_unit() {
	timeout 120 systemctl start "$UNIT" || fail "systemctl start $UNIT failed: $(journal -u "$UNIT")"
	[[ $(systemctl show -p ActiveState --value "$UNIT") == active ]] ||
		fail "$UNIT is $(systemctl show -p ActiveState --value "$UNIT"), not active: $(journal -u "$UNIT")"
	wait_until 60 svc_running || fail "container svc is not running: $(journal -u "$UNIT")"
	UNIT_CG=$(systemctl show -p ControlGroup --value "$UNIT")
	MAIN=$(systemctl show -p MainPID --value "$UNIT")
	PID=$(e inspect --format '{{.State.Pid}}' svc)
	CTR_ID=$(e inspect --format '{{.Id}}' svc)
	CTR_CG=$(sed -n 's/^0:://p' "/proc/$PID/cgroup")
}

# The container's and berth's groups, as Specs/cgroups.md places them in a
# delegated unit: berth in <unit>/supervisor, the container in
# <unit>/berth/<id>.
assert_in_unit_group() {
	[[ -n $UNIT_CG && $UNIT_CG != / ]] || fail "no ControlGroup for $UNIT"
	[[ $CTR_CG == "$UNIT_CG"/* ]] ||
		fail "the container (pid $PID) is in $CTR_CG, outside the unit's group $UNIT_CG"
	assert_eq "$CTR_CG" "$UNIT_CG/berth/$CTR_ID" "the container's group"
	assert_eq "$(sed -n 's/^0:://p' "/proc/$MAIN/cgroup")" "$UNIT_CG/supervisor" "berth's group (MainPID $MAIN)"
}

@test "a foreground run as a Type=exec unit: the container in the unit's group; systemctl stop passes SIGTERM on and the unit gets its exit code" {
	system_unit
	start_system_unit
	assert_in_unit_group
	timeout 120 systemctl stop "$UNIT" || fail "systemctl stop failed: $(journal -u "$UNIT")"
	assert_eq "$(systemctl show -p ExecMainStatus --value "$UNIT")" 7 "ExecMainStatus (the container's exit code)"
	assert_eq "$(systemctl show -p Result --value "$UNIT")" exit-code "Result"
	pid_dead "$PID" || fail "the container's process $PID outlived the unit"
	[[ ! -e /sys/fs/cgroup$CTR_CG ]] || fail "the container's group $CTR_CG is left"
	run e ps -a -q
	assert_status 0
	assert_eq "$output" "" "berth ps -a (--rm)"
}

@test "MemoryMax= and TasksMax= of the unit bind its container: an allocation beyond it is OOM-killed, forks beyond it fail" {
	system_unit MemoryMax=64M TasksMax=20
	start_system_unit
	assert_in_unit_group
	local unit=/sys/fs/cgroup$UNIT_CG ctr=/sys/fs/cgroup$CTR_CG
	# The limits sit on the unit's group; the container's own group, below
	# it, has none of its own.
	assert_eq "$(cat "$unit/memory.max") $(cat "$unit/pids.max")" "67108864 20" "the unit's memory.max and pids.max"
	assert_eq "$(cat "$ctr/memory.max") $(cat "$ctr/pids.max")" "max max" "the container's memory.max and pids.max"

	# tail keeps its whole input when it has no newline: 200 MB of it.
	run e exec svc sh -c 'head -c 200000000 /dev/zero | tail >/dev/null; echo "rc=$?"'
	assert_contains "$output" "rc=137" "the allocation's exit status (SIGKILL)"
	local ooms
	ooms=$(awk '$1 == "oom_kill" { print $2 }' "$unit/memory.events")
	((ooms >= 1)) || fail "no oom_kill in the unit's memory.events: $(cat "$unit/memory.events")"

	# 50 background sleeps: the subshell dies at the first refused fork; the
	# count it got to is in a file (the outer shell reads it with builtins).
	# Then kill -1 (a builtin) ends the sleeps, freeing the tasks.
	run e exec svc sh -c '(i=0; while [ $i -lt 50 ]; do sleep 60 & i=$((i + 1)); echo $i >/tmp/forked; done) 2>&1
		read n </tmp/forked; echo "forked=$n"; kill -KILL -1'
	assert_contains "$output" "can't fork"
	[[ $output =~ forked=([0-9]+) ]] || fail "no count: $output"
	((BASH_REMATCH[1] < 50)) || fail "all 50 forks succeeded under TasksMax=20: $output"
	# Linux 6.1 counts a refused fork in the forking task's group (the
	# container's), later kernels also in the group whose limit refused it.
	local refused
	refused=$(cat "$unit/pids.events" "$ctr/pids.events" | awk '$1 == "max" { n += $2 } END { print n + 0 }')
	((refused >= 1)) || fail "no refusal counted in pids.events: $(cat "$unit/pids.events" "$ctr/pids.events")"

	timeout 120 systemctl stop "$UNIT" || fail "systemctl stop failed: $(journal -u "$UNIT")"
	assert_eq "$(systemctl show -p ExecMainStatus --value "$UNIT")" 7 "ExecMainStatus after the limits were hit"
	pid_dead "$PID" || fail "the container's process $PID outlived the unit"
}

unit_down() { [[ $(systemctl show -p ActiveState --value "$UNIT") == @(inactive|failed) ]]; }

@test "SIGKILL to berth, the unit's main process, leaves no container process; the store says the container is gone or exited; the unit starts again" {
	system_unit
	start_system_unit
	assert_in_unit_group
	timeout 60 systemctl kill -s SIGKILL --kill-who=main "$UNIT" || fail "systemctl kill failed"
	wait_until 60 unit_down || fail "$UNIT still $(systemctl show -p ActiveState --value "$UNIT")"
	wait_until 30 pid_dead "$PID" || fail "the container's process $PID survived its berth: $(ps -o pid,args -p "$PID")"
	pid_dead "$MAIN" || fail "berth ($MAIN) survived SIGKILL"
	[[ ! -e /sys/fs/cgroup$CTR_CG ]] || fail "the container's group $CTR_CG is left"
	run e ps -a --format '{{.Names}} {{.Status}}'
	assert_status 0
	[[ -z $output || $output == "svc Exited"* ]] || fail "berth ps -a: expected nothing or svc exited, got: $output"
	run e ps -q
	assert_eq "$output" "" "berth ps (running containers)"
	# A record the killed berth left (--rm was its job) does not block the
	# next start: --replace removes it.
	local old=$PID
	timeout 120 systemctl start "$UNIT" || fail "the second start failed: $(journal -u "$UNIT")"
	wait_until 60 svc_running || fail "container svc is not running again: $(journal -u "$UNIT")"
	PID=$(e inspect --format '{{.State.Pid}}' svc)
	[[ $PID != "$old" ]] || fail "the same container process $PID runs again"
	timeout 120 systemctl stop "$UNIT" || fail "systemctl stop failed: $(journal -u "$UNIT")"
	assert_eq "$(systemctl show -p ExecMainStatus --value "$UNIT")" 7 "ExecMainStatus of the second run"
	pid_dead "$old" || fail "the first container's process $old is back"
	run e ps -a -q
	assert_eq "$output" "" "berth ps -a after the second run"
}

# ------------------------------------------------------------------ rootless

# as_user CMD... — CMD as $USER_NAME with its manager's runtime dir.
as_user() {
	runuser -u "$USER_NAME" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$USER_HOME" \
		USER="$USER_NAME" LOGNAME="$USER_NAME" LANG=C.UTF-8 XDG_RUNTIME_DIR="/run/user/$USER_UID" \
		"$@" <"$BERTH_EMPTY"
}
# ue ARG... — the user's berth with the test's store under its home.
ue() { as_user timeout -k 5 "$BERTH_TIMEOUT" "$USER_BIN" --root "$USER_DIR/store" --runroot "$USER_DIR/run" "$@"; }
usctl() { timeout 120 systemctl --user -M "$USER_NAME@" "$@"; }
user_svc_running() { [[ $(ue inspect --format '{{.State.Status}}' svc 2>/dev/null) == running ]]; }

remove_user_unit() {
	usctl stop "$UNIT" || true
	usctl reset-failed "$UNIT" 2>/dev/null || true
	rm -f "$USER_HOME/.config/systemd/user/$UNIT"
	usctl daemon-reload
}

remove_user_dir() {
	ue rm --all --force >/dev/null || true
	rm -rf --one-file-system "$USER_DIR"
}

@test "rootless: the same unit in a lingering user's manager (Delegate=yes in a user unit)" {
	USER_NAME=${BERTH_SYSTEMD_USER:-${BERTH_VM_LINGER%% *}}
	[[ -n $USER_NAME ]] || skip "no lingering user: scripts/vm-systemd --linger USER (or BERTH_SYSTEMD_USER)"
	USER_UID=$(id -u "$USER_NAME") || fail "no user $USER_NAME"
	USER_HOME=$(getent passwd "$USER_NAME" | cut -d: -f6)
	systemctl is-active --quiet "user@$USER_UID.service" ||
		fail "user@$USER_UID.service ($USER_NAME's manager) is not running: is $USER_NAME lingering?"
	USER_BIN=${BERTH_USER_BIN:-$BERTH}
	as_user test -x "$USER_BIN" || fail "$USER_NAME cannot execute $USER_BIN (set BERTH_USER_BIN)"
	if [[ ! -d $USER_HOME ]]; then
		mkdir -p "$USER_HOME" && chown "$USER_NAME:" "$USER_HOME"
	fi
	USER_DIR=$(as_user mktemp -d "$USER_HOME/.berth-systemd-spec.XXXXXX") || fail "cannot make a dir in $USER_HOME"
	CLEANUP+=(remove_user_dir)
	install -o "$USER_NAME" -m 0644 "$BERTH_BUSYBOX_TAR" "$USER_DIR/busybox.tar.gz"
	ue import -q -c 'CMD ["sh"]' "$USER_DIR/busybox.tar.gz" busybox >/dev/null || fail "import as $USER_NAME failed"

	as_user mkdir -p "$USER_HOME/.config/systemd/user"
	service_unit "$USER_BIN" "$USER_DIR/store" "$USER_DIR/run" >"$USER_HOME/.config/systemd/user/$UNIT"
	chown "$USER_NAME:" "$USER_HOME/.config/systemd/user/$UNIT"
	CLEANUP+=("remove_user_unit $UNIT")
	usctl daemon-reload
	usctl start "$UNIT" || fail "systemctl --user start failed: $(journal _SYSTEMD_USER_UNIT="$UNIT")"
	[[ $(usctl show -p ActiveState --value "$UNIT") == active ]] ||
		fail "$UNIT is $(usctl show -p ActiveState --value "$UNIT"), not active: $(journal _SYSTEMD_USER_UNIT="$UNIT")"
	wait_until 60 user_svc_running || fail "container svc is not running: $(journal _SYSTEMD_USER_UNIT="$UNIT")"
	UNIT_CG=$(usctl show -p ControlGroup --value "$UNIT")
	MAIN=$(usctl show -p MainPID --value "$UNIT")
	PID=$(ue inspect --format '{{.State.Pid}}' svc)
	CTR_ID=$(ue inspect --format '{{.Id}}' svc)
	CTR_CG=$(sed -n 's/^0:://p' "/proc/$PID/cgroup")
	[[ $UNIT_CG == "/user.slice/user-$USER_UID.slice/user@$USER_UID.service/"* ]] ||
		fail "the unit's group $UNIT_CG is not in $USER_NAME's manager"
	assert_in_unit_group

	usctl stop "$UNIT" || fail "systemctl --user stop failed: $(journal _SYSTEMD_USER_UNIT="$UNIT")"
	assert_eq "$(usctl show -p ExecMainStatus --value "$UNIT")" 7 "ExecMainStatus (the container's exit code)"
	pid_dead "$PID" || fail "the container's process $PID outlived the unit"
	[[ ! -e /sys/fs/cgroup$CTR_CG ]] || fail "the container's group $CTR_CG is left"
	run ue ps -a -q
	assert_status 0
	assert_eq "$output" "" "berth ps -a (--rm)"
}
