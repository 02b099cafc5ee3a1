#!/usr/bin/env bats
#
# End-to-end spec of berth under a real systemd (Specs/systemd.md): a
# foreground `berth run` as the main process of a service, as root in the
# system manager and rootless in a lingering user's manager; Type=notify
# units for each --sdnotify mode, quadlet .container files through the
# generator links, and the journald log driver.
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
# UNIT_TYPE (default exec), RUN_FLAGS (more flags of `berth run`) and CTR_CMD
# (the container's command instead of the loop) change it.
service_unit() {
	local bin=$1 store=$2 runroot=$3 line
	shift 3
	cat <<EOF
[Unit]
Description=berth spec $BATS_TEST_NUMBER: a container as a service

[Service]
Type=${UNIT_TYPE:-exec}
ExecStart=$bin --root $store --runroot $runroot run --rm --replace --name svc --network none ${RUN_FLAGS:-} busybox ${CTR_CMD:-sh -c '$LOOP'}
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

# ------------------------------------------------------------ Type=notify
# A Type=notify unit is active once READY=1 reached systemd: what sends it is
# the --sdnotify mode's business (containers.md, "sdnotify and health
# checks"). The starts below do not block (--no-block) where the unit is to
# stay activating; ActiveState is polled instead.

# notify_unit MODE [LINE...] — $UNIT as Type=notify with `run --sdnotify=MODE`
# (RUN_FLAGS: more flags), NotifyAccess=all (READY=1 may come from another
# process than berth: a health check's).
notify_unit() {
	local mode=$1
	shift
	UNIT_TYPE=notify RUN_FLAGS="--sdnotify=$mode ${RUN_FLAGS:-}" system_unit NotifyAccess=all "$@"
}

state_is() { [[ $(systemctl show -p ActiveState --value "$UNIT") == "$1" ]]; }

# never_active — the unit has not been active since it was loaded.
never_active() { [[ $(systemctl show -p ActiveEnterTimestampMonotonic --value "$UNIT") == 0 ]]; }

# still_activating WHAT — the container runs, the unit waits for READY=1.
still_activating() {
	state_is activating && never_active ||
		fail "$1: $UNIT is not activating: $(systemctl show -p ActiveState -p SubState -p Result "$UNIT" | tr '\n' ' ')- $(journal -u "$UNIT")"
}

# start_no_block — start $UNIT without waiting for READY=1; wait for its
# container; sets MAIN, PID, CTR_ID, UNIT_CG and CTR_CG as start_system_unit.
start_no_block() {
	timeout 60 systemctl start --no-block "$UNIT" || fail "systemctl start --no-block $UNIT failed"
	wait_until 90 svc_running || fail "container svc is not running: $(journal -u "$UNIT")"
	UNIT_CG=$(systemctl show -p ControlGroup --value "$UNIT")
	MAIN=$(systemctl show -p MainPID --value "$UNIT")
	PID=$(e inspect --format '{{.State.Pid}}' svc)
	CTR_ID=$(e inspect --format '{{.Id}}' svc)
	CTR_CG=$(sed -n 's/^0:://p' "/proc/$PID/cgroup")
}

# becomes_active — wait for READY=1 to have made $UNIT active.
becomes_active() {
	wait_until 90 state_is active ||
		fail "$UNIT is $(systemctl show -p ActiveState --value "$UNIT"), not active: $(journal -u "$UNIT")"
}

# stop_unit STATUS — systemctl stop; the container's exit code and nothing left.
stop_unit() {
	timeout 120 systemctl stop "$UNIT" || fail "systemctl stop failed: $(journal -u "$UNIT")"
	assert_eq "$(systemctl show -p ExecMainStatus --value "$UNIT")" "$1" "ExecMainStatus (the container's exit code)"
	pid_dead "$PID" || fail "the container's process $PID outlived the unit"
	run e ps -a -q
	assert_eq "$output" "" "berth ps -a (--rm)"
}

# assert_main_is_berth [BIN] — MainPID is the foreground berth (BIN, default
# BERTH: the container's supervisor, its init's parent), not a process of the
# container's.
assert_main_is_berth() {
	[[ $MAIN =~ ^[1-9][0-9]*$ ]] || fail "no MainPID for $UNIT: '$MAIN'"
	assert_eq "$(readlink "/proc/$MAIN/exe")" "$(readlink -f "${1:-$BERTH}")" "MainPID $MAIN's executable"
	assert_eq "$(ps -o ppid= -p "$PID" | tr -d ' ')" "$MAIN" "the parent of the container's init ($PID)"
}

# ready_script DIR — DIR/ready.sh, the container of --sdnotify=container: it
# waits for /tmp/go (made by `berth exec`), then sends READY=1 to its
# NOTIFY_SOCKET as Specs/notify.bats does (busybox's logger: one datagram to
# /dev/log, a syslog line and then ours), then loops as LOOP.
ready_script() {
	mkdir -p "$1"
	cat >"$1/ready.sh" <<-'EOF'
		trap "exit 7" TERM
		echo "waiting for /tmp/go; NOTIFY_SOCKET=$NOTIFY_SOCKET"
		while [ ! -e /tmp/go ]; do sleep 0.1; done
		ln -sf "$NOTIFY_SOCKET" /dev/log
		logger "$(printf 'x\nREADY=1')"
		echo "sent READY=1"
		while :; do sleep 0.1; done
	EOF
	chmod -R a+rX "$1"
}

@test "Type=notify, --sdnotify=conmon: active once the container runs; MainPID is the foreground berth" {
	notify_unit conmon
	start_system_unit
	MAIN=$(systemctl show -p MainPID --value "$UNIT")
	assert_main_is_berth
	assert_in_unit_group
	assert_eq "$(systemctl show -p NotifyAccess --value "$UNIT")" all "NotifyAccess"
	run e exec svc sh -c 'echo "[${NOTIFY_SOCKET-unset}]"'
	assert_eq "$output" "[unset]" "the container's NOTIFY_SOCKET (conmon mode)"
	stop_unit 7
}

@test "Type=notify, --sdnotify=container: activating until the container sends READY=1 through its own socket, then active" {
	ready_script "$BATS_TEST_TMPDIR/ctl"
	RUN_FLAGS="-v $BATS_TEST_TMPDIR/ctl:/ctl:ro" CTR_CMD="sh /ctl/ready.sh" notify_unit container
	start_no_block
	run e exec svc sh -c 'echo "$NOTIFY_SOCKET"; stat -c %F "$NOTIFY_SOCKET"'
	assert_eq "$output" "/run/notify/notify.sock
socket" "the container's NOTIFY_SOCKET"
	still_activating "the container runs and has said nothing"
	e exec svc touch /tmp/go
	becomes_active
	assert_eq "$(systemctl show -p MainPID --value "$UNIT")" "$MAIN" "MainPID after READY=1"
	assert_main_is_berth
	assert_in_unit_group
	stop_unit 7
}

@test "Type=notify, --sdnotify=healthy: activating until the health check passes, then active" {
	RUN_FLAGS="--health-cmd 'test -e /tmp/ok' --health-interval 1s" notify_unit healthy
	start_no_block
	# A check has run (and failed) while the unit waits.
	failed_check() { [[ $(e inspect --format '{{json .State.Health}}' svc | jq '.Log | length') -ge 1 ]]; }
	wait_until 60 failed_check || fail "no health check ran: $(e inspect --format '{{json .State.Health}}' svc)"
	still_activating "the check fails"
	e exec svc touch /tmp/ok
	becomes_active
	assert_eq "$(e inspect --format '{{.State.Health.Status}}' svc)" healthy "the container's health"
	MAIN=$(systemctl show -p MainPID --value "$UNIT")
	assert_main_is_berth
	stop_unit 7
}

@test "Type=notify, --sdnotify=ignore: nothing reaches systemd, the start times out; the container has no NOTIFY_SOCKET" {
	notify_unit ignore TimeoutStartSec=20
	start_no_block
	run e exec svc env
	assert_status 0
	assert_eq "$(grep -c NOTIFY_SOCKET <<<"$output")" 0 "NOTIFY_SOCKET lines in the container's environment"
	assert_eq "$(e inspect --format '{{.Config.SdNotifyMode}}:{{.Config.SdNotifySocket}}' svc)" "ignore:"
	wait_until 90 unit_down || fail "$UNIT still $(systemctl show -p ActiveState --value "$UNIT")"
	assert_eq "$(systemctl show -p ActiveState --value "$UNIT")" failed "ActiveState"
	assert_eq "$(systemctl show -p Result --value "$UNIT")" timeout "Result"
	never_active || fail "$UNIT was active once"
	wait_until 30 pid_dead "$PID" || fail "the container's process $PID outlived the unit"
	run e ps -a -q
	assert_eq "$output" "" "berth ps -a (--rm)"
}

@test "--log-driver passthrough: the container's stdout and stderr are the unit's own journal stream, not a copy; berth logs refuses" {
	RUN_FLAGS="--log-driver passthrough" CTR_CMD="sh -c 'echo pass-out-$$; echo pass-err-$$ >&2; $LOOP'" system_unit
	start_system_unit
	# The same socket (systemd's stream to journald) as berth's own, not a
	# pipe of berth's.
	local fd
	for fd in 1 2; do
		[[ $(readlink "/proc/$MAIN/fd/$fd") == socket:* ]] || fail "berth's fd $fd is $(readlink "/proc/$MAIN/fd/$fd"), not the journal's socket"
		assert_eq "$(readlink "/proc/$PID/fd/$fd")" "$(readlink "/proc/$MAIN/fd/$fd")" "the container's fd $fd"
	done
	both() { journal -u "$UNIT" | grep -q "pass-out-$$" && journal -u "$UNIT" | grep -q "pass-err-$$"; }
	wait_until 30 both || fail "the lines are not the unit's: $(journal -u "$UNIT")"
	run --separate-stderr e logs svc
	assert_status 125
	assert_contains "$stderr" "passthrough"
	stop_unit 7
}

# gen_unit e|ue NAME — with root's berth (e) or the user's (ue): a
# container NAME that exits 143 on SIGTERM, and `berth generate systemd
# --new --name` of it on stdout.
gen_unit() {
	local g=$1 name=$2
	"$g" create --name "$name" --network none busybox sh -c "echo $name up; trap 'exit 143' TERM; while :; do sleep 0.1; done" >/dev/null ||
		fail "berth create $name failed"
	"$g" generate systemd --new --name "$name" || fail "generate systemd failed"
}

@test "generate systemd --new: the unit it prints, installed as it is, starts the container anew (active once it runs), stops it cleanly; after a SIGKILL to berth it restarts with a new container" {
	local name=gen-$BATS_TEST_NUMBER-$$
	UNIT=container-$name.service
	gen_unit e "$name" >"/run/systemd/system/$UNIT"
	CLEANUP+=("remove_system_unit $UNIT")
	local old
	old=$(e inspect --format '{{.Id}}' "$name")
	systemctl daemon-reload
	assert_eq "$(systemctl show -p Type --value "$UNIT")" notify "Type"
	timeout 120 systemctl start "$UNIT" || fail "systemctl start $UNIT failed: $(journal -u "$UNIT")"
	assert_eq "$(systemctl show -p ActiveState --value "$UNIT")" active "ActiveState"
	run e ps --format '{{.Names}} {{.Status}}'
	[[ $output == "$name Up"* ]] || fail "berth ps: expected $name up, got: $output"
	[[ $(e inspect --format '{{.Id}}' "$name") != "$old" ]] || fail "the unit ran the old container, not a new one"
	PID=$(e inspect --format '{{.State.Pid}}' "$name")
	CTR_ID=$(e inspect --format '{{.Id}}' "$name")
	CTR_CG=$(sed -n 's/^0:://p' "/proc/$PID/cgroup")
	UNIT_CG=$(systemctl show -p ControlGroup --value "$UNIT")
	MAIN=$(systemctl show -p MainPID --value "$UNIT")
	assert_main_is_berth
	assert_in_unit_group
	journal -u "$UNIT" | grep -q "$name up" || fail "the container's output is not in the unit's journal: $(journal -u "$UNIT")"
	timeout 120 systemctl stop "$UNIT" || fail "systemctl stop failed: $(journal -u "$UNIT")"
	assert_eq "$(systemctl show -p ActiveState --value "$UNIT")" inactive "ActiveState after the stop"
	assert_eq "$(systemctl show -p Result --value "$UNIT")" success "Result (143 is its SuccessExitStatus=)"
	pid_dead "$PID" || fail "the container's process $PID outlived the unit"
	run e ps -a -q
	assert_eq "$output" "" "berth ps -a after the stop"

	# SIGKILL to berth: a failure, so Restart=on-failure starts it again
	# (ExecStopPost= removed the record berth left, --replace would too).
	timeout 120 systemctl start "$UNIT" || fail "the second start failed: $(journal -u "$UNIT")"
	PID=$(e inspect --format '{{.State.Pid}}' "$name")
	timeout 60 systemctl kill -s SIGKILL --kill-who=main "$UNIT" || fail "systemctl kill failed"
	wait_until 30 pid_dead "$PID" || fail "the container's process $PID survived its berth"
	restarted() {
		[[ $(systemctl show -p NRestarts --value "$UNIT") -ge 1 ]] && state_is active &&
			[[ $(e inspect --format '{{.State.Status}} {{.State.Pid}}' "$name" 2>/dev/null) == "running "* ]]
	}
	wait_until 90 restarted || fail "$UNIT did not come back (Restart=on-failure): $(systemctl show -p NRestarts -p ActiveState "$UNIT" | tr '\n' ' ')$(journal -u "$UNIT")"
	[[ $(e inspect --format '{{.State.Pid}}' "$name") != "$PID" ]] || fail "the killed container's process $PID runs again"
	run e ps -a --format '{{.Names}}'
	assert_eq "$output" "$name" "berth ps -a after the restart (one container)"
	timeout 120 systemctl stop "$UNIT" || fail "systemctl stop failed: $(journal -u "$UNIT")"
	run e ps -a -q
	assert_eq "$output" "" "berth ps -a after the stop"
}

# ------------------------------------------------------------------ quadlet
# berth as systemd's generator (systemd-units.md): a .container file in
# /etc/berth/systemd becomes NAME.service at daemon-reload.

# quadlet_file NAME STORE RUNROOT — NAME.container: busybox looping until
# SIGTERM, which it answers with exit 143 (the unit's SuccessExitStatus=), in
# the store STORE (GlobalArgs=); the service is installed in multi-user.target.
quadlet_file() {
	cat <<-EOF
		[Unit]
		Description=berth spec $BATS_TEST_NUMBER: a quadlet container

		[Container]
		Image=busybox
		Exec=sh -c "trap 'exit 143' TERM; while :; do sleep 0.1; done"
		Network=none
		GlobalArgs=--root $2 --runroot $3

		[Install]
		WantedBy=multi-user.target
	EOF
}

# remove_quadlet SYSTEMCTL... -- UNIT LINK FILE — stop UNIT, remove the
# generator link and the .container file, daemon-reload.
remove_quadlet() {
	local ctl=()
	while [[ $1 != -- ]]; do ctl+=("$1"); shift; done
	shift
	"${ctl[@]}" stop "$1" || true
	"${ctl[@]}" reset-failed "$1" 2>/dev/null || true
	rm -f "$2" "$3"
	"${ctl[@]}" daemon-reload
}

@test "quadlet: a .container file in /etc/berth/systemd is a service after daemon-reload (berth-generator); it starts, runs its container, stops" {
	local name=berth-spec-q$BATS_TEST_NUMBER-$$ link=/usr/lib/systemd/system-generators/berth-generator
	local file=/etc/berth/systemd/$name.container
	mkdir -p /etc/berth/systemd
	[[ ! -e $link ]] || fail "$link exists already"
	quadlet_file "$name" "$STATE" "$RUNROOT" >"$file"
	ln -s "$BERTH" "$link"
	UNIT=$name.service
	CLEANUP+=("remove_quadlet timeout 120 systemctl -- $UNIT $link $file")
	systemctl daemon-reload
	run systemctl cat "$UNIT"
	assert_status 0
	assert_contains "$output" "# /run/systemd/generator/$UNIT"
	assert_contains "$output" "ExecStart=$BERTH --root $STATE --runroot $RUNROOT run --name systemd-%N --replace --rm --cgroups=split"
	assert_contains "$output" "Type=notify"
	assert_eq "$(systemctl is-enabled "$UNIT" 2>&1)" generated "is-enabled"
	assert_contains "$(systemctl show -p WantedBy --value "$UNIT")" multi-user.target "WantedBy"

	timeout 120 systemctl start "$UNIT" || fail "systemctl start $UNIT failed: $(journal -u "$UNIT")"
	assert_eq "$(systemctl show -p ActiveState --value "$UNIT")" active "$UNIT's ActiveState"
	run e ps --format '{{.Names}} {{.Status}}'
	assert_status 0
	[[ $output == "systemd-$name Up"* ]] || fail "berth ps: expected systemd-$name up, got: $output"
	PID=$(e inspect --format '{{.State.Pid}}' "systemd-$name")
	MAIN=$(systemctl show -p MainPID --value "$UNIT")
	assert_main_is_berth
	timeout 120 systemctl stop "$UNIT" || fail "systemctl stop failed: $(journal -u "$UNIT")"
	assert_eq "$(systemctl show -p ActiveState --value "$UNIT")" inactive "ActiveState after the stop"
	assert_eq "$(systemctl show -p Result --value "$UNIT")" success "Result (exit 143 is a success)"
	pid_dead "$PID" || fail "the container's process $PID outlived the unit"
	run e ps -a -q
	assert_eq "$output" "" "berth ps -a after the stop"
}

# ------------------------------------------------------------------ journald

@test "--log-driver journald: each line an entry with the container's fields, PRIORITY 6 and 3; berth logs reads them back" {
	local name=j-$BATS_TEST_NUMBER-$$
	run e run --log-driver journald --name "$name" busybox sh -c 'echo out-1; echo err-line >&2; echo out-2'
	assert_status 0
	local id
	id=$(e inspect --format '{{.Id}}' "$name")
	entries() { journalctl --no-pager -o json "CONTAINER_NAME=$name" 2>/dev/null; }
	three() { [[ $(entries | wc -l) -ge 3 ]]; }
	wait_until 30 three || fail "not three entries for $name: $(entries)"
	run jq -rs 'map("\(.MESSAGE) \(.PRIORITY) \(.CONTAINER_ID_FULL) \(.CONTAINER_ID) \(.SYSLOG_IDENTIFIER) \(._UID)") | sort | .[]' < <(entries)
	assert_status 0
	assert_eq "$output" "err-line 3 $id ${id:0:12} $name 0
out-1 6 $id ${id:0:12} $name 0
out-2 6 $id ${id:0:12} $name 0" "the journal entries"
	run --separate-stderr e logs "$name"
	assert_status 0
	assert_eq "$output" "out-1
out-2" "berth logs, stdout"
	assert_eq "$stderr" "err-line" "berth logs, stderr"
}

# ------------------------------------------------------------------ rootless

# as_user CMD... — CMD as $USER_NAME with its manager's runtime dir.
as_user() {
	runuser -u "$USER_NAME" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$USER_HOME" \
		USER="$USER_NAME" LOGNAME="$USER_NAME" LANG=C.UTF-8 XDG_RUNTIME_DIR="/run/user/$USER_UID" \
		"$@" <"$BERTH_EMPTY"
}
# as_user_in GROUP CMD... — as_user with GROUP as a supplementary group.
as_user_in() {
	local group=$1
	shift
	runuser -u "$USER_NAME" -g "$(id -gn "$USER_NAME")" -G "$group" -- env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$USER_HOME" \
		USER="$USER_NAME" LOGNAME="$USER_NAME" LANG=C.UTF-8 XDG_RUNTIME_DIR="/run/user/$USER_UID" \
		"$@" <"$BERTH_EMPTY"
}
# ue ARG... — the user's berth with the test's store under its home.
ue() { as_user timeout -k 5 "$BERTH_TIMEOUT" "$USER_BIN" --root "$USER_DIR/store" --runroot "$USER_DIR/run" "$@"; }
usctl() { timeout 120 systemctl --user -M "$USER_NAME@" "$@"; }
user_svc_running() { [[ $(ue inspect --format '{{.State.Status}}' svc 2>/dev/null) == running ]]; }

remove_user_unit() {
	usctl stop "$1" || true
	usctl reset-failed "$1" 2>/dev/null || true
	rm -f "$USER_HOME/.config/systemd/user/$1"
	usctl daemon-reload
}

remove_user_dir() {
	ue rm --all --force >/dev/null || true
	rm -rf --one-file-system "$USER_DIR"
}

# user_setup — the lingering user (USER_NAME, USER_UID, USER_HOME), the
# binary it runs (USER_BIN) and a store of its own under its home (USER_DIR)
# with busybox; skips without a lingering user.
user_setup() {
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
}

# user_unit [LINE...] — install $UNIT (service_unit with the user's binary
# and store) in the user's manager; it is stopped and removed at teardown.
user_unit() {
	as_user mkdir -p "$USER_HOME/.config/systemd/user"
	service_unit "$USER_BIN" "$USER_DIR/store" "$USER_DIR/run" "$@" >"$USER_HOME/.config/systemd/user/$UNIT"
	chown "$USER_NAME:" "$USER_HOME/.config/systemd/user/$UNIT"
	CLEANUP+=("remove_user_unit $UNIT")
	usctl daemon-reload
}

ujournal() { journal _SYSTEMD_USER_UNIT="$UNIT"; }
user_state_is() { [[ $(usctl show -p ActiveState --value "$UNIT") == "$1" ]]; }

# user_unit_started — $UNIT of the user's manager is active and its
# container runs; sets UNIT_CG, MAIN, PID, CTR_ID and CTR_CG.
user_unit_started() {
	[[ $(usctl show -p ActiveState --value "$UNIT") == active ]] ||
		fail "$UNIT is $(usctl show -p ActiveState --value "$UNIT"), not active: $(ujournal)"
	wait_until 60 user_svc_running || fail "container svc is not running: $(ujournal)"
	UNIT_CG=$(usctl show -p ControlGroup --value "$UNIT")
	MAIN=$(usctl show -p MainPID --value "$UNIT")
	PID=$(ue inspect --format '{{.State.Pid}}' svc)
	CTR_ID=$(ue inspect --format '{{.Id}}' svc)
	CTR_CG=$(sed -n 's/^0:://p' "/proc/$PID/cgroup")
	[[ $UNIT_CG == "/user.slice/user-$USER_UID.slice/user@$USER_UID.service/"* ]] ||
		fail "the unit's group $UNIT_CG is not in $USER_NAME's manager"
}

# user_unit_stopped STATUS — systemctl --user stop: the container's exit
# code, nothing of it left.
user_unit_stopped() {
	usctl stop "$UNIT" || fail "systemctl --user stop failed: $(ujournal)"
	assert_eq "$(usctl show -p ExecMainStatus --value "$UNIT")" "$1" "ExecMainStatus (the container's exit code)"
	pid_dead "$PID" || fail "the container's process $PID outlived the unit"
	[[ ! -e /sys/fs/cgroup$CTR_CG ]] || fail "the container's group $CTR_CG is left"
	run ue ps -a -q
	assert_status 0
	assert_eq "$output" "" "berth ps -a (--rm)"
}

@test "rootless: the same unit in a lingering user's manager (Delegate=yes in a user unit)" {
	user_setup
	user_unit
	usctl start "$UNIT" || fail "systemctl --user start failed: $(ujournal)"
	user_unit_started
	assert_in_unit_group
	user_unit_stopped 7
}

@test "rootless: Type=notify user units: --sdnotify=conmon is active once the container runs (MainPID berth); --sdnotify=container once the container says READY=1" {
	user_setup
	UNIT_TYPE=notify RUN_FLAGS=--sdnotify=conmon user_unit NotifyAccess=all
	usctl start "$UNIT" || fail "systemctl --user start failed: $(ujournal)"
	user_unit_started
	assert_main_is_berth "$USER_BIN"
	assert_in_unit_group
	user_unit_stopped 7

	# Another unit: the container says READY=1 itself once told to.
	ready_script "$USER_DIR/ctl"
	chown -R "$USER_NAME:" "$USER_DIR/ctl"
	UNIT=berth-spec-$BATS_TEST_NUMBER-$$-ready.service
	UNIT_TYPE=notify RUN_FLAGS="--sdnotify=container -v $USER_DIR/ctl:/ctl:ro" CTR_CMD="sh /ctl/ready.sh" \
		user_unit NotifyAccess=all
	usctl start --no-block "$UNIT" || fail "systemctl --user start --no-block failed"
	wait_until 90 user_svc_running || fail "container svc is not running: $(ujournal)"
	PID=$(ue inspect --format '{{.State.Pid}}' svc)
	user_state_is activating && [[ $(usctl show -p ActiveEnterTimestampMonotonic --value "$UNIT") == 0 ]] ||
		fail "$UNIT is $(usctl show -p ActiveState --value "$UNIT") before READY=1 (expected activating): $(ujournal)"
	# From here, outside the user's manager (as from a login session): the
	# exec'd process cannot be moved into the container's group.
	ue exec svc touch /tmp/go
	wait_until 90 user_state_is active || fail "$UNIT is $(usctl show -p ActiveState --value "$UNIT"), not active: $(ujournal)"
	user_unit_started
	assert_main_is_berth "$USER_BIN"
	assert_in_unit_group
	user_unit_stopped 7
}

@test "rootless: quadlet: a .container file in ~/.config/berth/systemd is a user service after daemon-reload (berth-user-generator)" {
	user_setup
	local name=berth-spec-q$BATS_TEST_NUMBER-$$ link=/usr/lib/systemd/user-generators/berth-user-generator
	local dir=$USER_HOME/.config/berth/systemd
	[[ ! -e $link ]] || fail "$link exists already"
	as_user mkdir -p "$dir"
	quadlet_file "$name" "$USER_DIR/store" "$USER_DIR/run" >"$dir/$name.container"
	chown "$USER_NAME:" "$dir/$name.container"
	ln -s "$USER_BIN" "$link"
	UNIT=$name.service
	CLEANUP+=("remove_quadlet usctl -- $UNIT $link $dir/$name.container")
	usctl daemon-reload
	# (systemctl -M cannot cat: the generated file itself)
	local path
	path=$(usctl show -p FragmentPath --value "$UNIT")
	assert_eq "$path" "/run/user/$USER_UID/systemd/generator/$UNIT" "$UNIT's file"
	output=$(cat "$path")
	assert_contains "$output" "ExecStart=$USER_BIN --root $USER_DIR/store --runroot $USER_DIR/run run --name systemd-%N --replace --rm --cgroups=split"
	assert_not_contains "$output" "network-online.target"
	assert_eq "$(usctl is-enabled "$UNIT" 2>&1)" generated "is-enabled"

	usctl start "$UNIT" || fail "systemctl --user start $UNIT failed: $(ujournal)"
	assert_eq "$(usctl show -p ActiveState --value "$UNIT")" active "$UNIT's ActiveState"
	run ue ps --format '{{.Names}} {{.Status}}'
	assert_status 0
	[[ $output == "systemd-$name Up"* ]] || fail "berth ps: expected systemd-$name up, got: $output"
	PID=$(ue inspect --format '{{.State.Pid}}' "systemd-$name")
	MAIN=$(usctl show -p MainPID --value "$UNIT")
	assert_main_is_berth "$USER_BIN"
	usctl stop "$UNIT" || fail "systemctl --user stop failed: $(ujournal)"
	assert_eq "$(usctl show -p ActiveState --value "$UNIT")" inactive "ActiveState after the stop"
	assert_eq "$(usctl show -p Result --value "$UNIT")" success "Result (exit 143 is a success)"
	pid_dead "$PID" || fail "the container's process $PID outlived the unit"
	run ue ps -a -q
	assert_eq "$output" "" "berth ps -a after the stop"
}

# limits_script DIR — DIR/limits.sh, a container that tries the unit's
# limits itself (a rootless `berth exec` from outside the user's manager
# runs in the caller's group, not under the unit's limits): 200 MB held by
# tail, then 50 background sleeps; each result goes to /ctl/*.out, then it
# loops as LOOP.
limits_script() {
	mkdir -p "$1"
	cat >"$1/limits.sh" <<-'EOF'
		trap "exit 7" TERM
		head -c 200000000 /dev/zero | tail >/dev/null
		echo "rc=$?" >/ctl/mem.out
		(i=0; while [ $i -lt 50 ]; do sleep 60 & i=$((i + 1)); echo $i >/tmp/forked; done) 2>/ctl/fork.err
		read n </tmp/forked
		echo "forked=$n" >/ctl/fork.out
		kill -KILL -1
		while :; do sleep 0.1; done
	EOF
}

@test "rootless: MemoryMax= and TasksMax= of a user unit bind its container; SIGKILL to berth leaves no container process" {
	user_setup
	local ctl=$USER_DIR/ctl
	limits_script "$ctl"
	chown -R "$USER_NAME:" "$ctl"
	RUN_FLAGS="-v $ctl:/ctl" CTR_CMD="sh /ctl/limits.sh" user_unit MemoryMax=64M TasksMax=20
	usctl start "$UNIT" || fail "systemctl --user start failed: $(ujournal)"
	user_unit_started
	assert_in_unit_group
	local unit=/sys/fs/cgroup$UNIT_CG
	assert_eq "$(cat "$unit/memory.max") $(cat "$unit/pids.max")" "67108864 20" "the user unit's memory.max and pids.max"
	fork_done() { [[ -s $ctl/fork.out ]]; }
	wait_until 120 fork_done || fail "the container did not get through its limits: $(ls "$ctl") $(ujournal)"
	assert_eq "$(cat "$ctl/mem.out")" "rc=137" "the allocation's exit status (SIGKILL)"
	local ooms
	ooms=$(awk '$1 == "oom_kill" { print $2 }' "$unit/memory.events")
	((ooms >= 1)) || fail "no oom_kill in the user unit's memory.events: $(cat "$unit/memory.events")"
	assert_contains "$(cat "$ctl/fork.err")" "can't fork"
	[[ $(cat "$ctl/fork.out") =~ forked=([0-9]+) ]] || fail "no count: $(cat "$ctl/fork.out")"
	((BASH_REMATCH[1] < 50)) || fail "all 50 forks succeeded under TasksMax=20"

	usctl kill -s SIGKILL --kill-who=main "$UNIT" || fail "systemctl --user kill failed"
	user_down() { [[ $(usctl show -p ActiveState --value "$UNIT") == @(inactive|failed) ]]; }
	wait_until 60 user_down || fail "$UNIT still $(usctl show -p ActiveState --value "$UNIT")"
	wait_until 30 pid_dead "$PID" || fail "the container's process $PID survived its berth: $(ps -o pid,args -p "$PID")"
	pid_dead "$MAIN" || fail "berth ($MAIN) survived SIGKILL"
	[[ ! -e /sys/fs/cgroup$CTR_CG ]] || fail "the container's group $CTR_CG is left"
	run ue ps -q
	assert_status 0
	assert_eq "$output" "" "berth ps (running containers)"
	run ue ps -a --format '{{.Names}} {{.Status}}'
	[[ -z $output || $output == "svc Exited"* ]] || fail "berth ps -a: expected nothing or svc exited, got: $output"
}

@test "rootless: Type=notify user units: --sdnotify=healthy is active once the health check passes; --sdnotify=ignore never (the start times out)" {
	user_setup
	UNIT_TYPE=notify RUN_FLAGS="--sdnotify=healthy --health-cmd 'test -e /tmp/ok' --health-interval 1s" user_unit NotifyAccess=all
	usctl start --no-block "$UNIT" || fail "systemctl --user start --no-block failed"
	wait_until 90 user_svc_running || fail "container svc is not running: $(ujournal)"
	failed_check() { [[ $(ue inspect --format '{{json .State.Health}}' svc | jq '.Log | length') -ge 1 ]]; }
	wait_until 60 failed_check || fail "no health check ran: $(ue inspect --format '{{json .State.Health}}' svc)"
	user_state_is activating && [[ $(usctl show -p ActiveEnterTimestampMonotonic --value "$UNIT") == 0 ]] ||
		fail "$UNIT is $(usctl show -p ActiveState --value "$UNIT") while the check fails (expected activating): $(ujournal)"
	ue exec svc touch /tmp/ok
	wait_until 90 user_state_is active || fail "$UNIT is $(usctl show -p ActiveState --value "$UNIT"), not active: $(ujournal)"
	assert_eq "$(ue inspect --format '{{.State.Health.Status}}' svc)" healthy "the container's health"
	user_unit_started
	assert_main_is_berth "$USER_BIN"
	user_unit_stopped 7

	UNIT=berth-spec-$BATS_TEST_NUMBER-$$-ignore.service
	UNIT_TYPE=notify RUN_FLAGS=--sdnotify=ignore user_unit NotifyAccess=all TimeoutStartSec=20
	usctl start --no-block "$UNIT" || fail "systemctl --user start --no-block failed"
	wait_until 90 user_svc_running || fail "container svc is not running: $(ujournal)"
	PID=$(ue inspect --format '{{.State.Pid}}' svc)
	run ue exec svc env
	assert_status 0
	assert_eq "$(grep -c NOTIFY_SOCKET <<<"$output")" 0 "NOTIFY_SOCKET lines in the container's environment"
	user_failed() { user_state_is failed; }
	wait_until 90 user_failed || fail "$UNIT is $(usctl show -p ActiveState --value "$UNIT"), not failed"
	assert_eq "$(usctl show -p Result --value "$UNIT")" timeout "Result"
	assert_eq "$(usctl show -p ActiveEnterTimestampMonotonic --value "$UNIT")" 0 "ActiveEnterTimestampMonotonic (never active)"
	wait_until 30 pid_dead "$PID" || fail "the container's process $PID outlived the unit"
	run ue ps -a -q
	assert_eq "$output" "" "berth ps -a (--rm)"
}

@test "rootless: log drivers in a user unit: journald entries carry the user's uid and the container's fields, berth logs reads them back; passthrough lines are the unit's own" {
	user_setup
	RUN_FLAGS="--log-driver journald" CTR_CMD="sh -c 'echo jout-$$; echo jerr-$$ >&2; $LOOP'" user_unit
	usctl start "$UNIT" || fail "systemctl --user start failed: $(ujournal)"
	user_unit_started
	entries() { journalctl --no-pager -o json "CONTAINER_ID_FULL=$CTR_ID" 2>/dev/null; }
	two() { [[ $(entries | wc -l) -ge 2 ]]; }
	wait_until 30 two || fail "not two entries for $CTR_ID: $(entries)"
	run jq -rs 'map("\(.MESSAGE) \(.PRIORITY) \(.CONTAINER_NAME) \(._UID)") | sort | .[]' < <(entries)
	assert_eq "$output" "jerr-$$ 3 svc $USER_UID
jout-$$ 6 svc $USER_UID" "the journal entries"
	# The VM's journal is volatile: one file, readable by the groups
	# systemd-journal and adm (persistent storage would give the user a file
	# of its own): outside those groups berth logs says it cannot read it;
	# as a member of systemd-journal the user reads its entries back.
	run --separate-stderr ue logs svc
	assert_status 125
	assert_contains "$stderr" "cannot read the journal: journalctl: No journal files were opened due to insufficient permissions"
	run --separate-stderr as_user_in systemd-journal timeout 60 "$USER_BIN" --root "$USER_DIR/store" --runroot "$USER_DIR/run" logs svc
	assert_status 0
	assert_eq "$output" "jout-$$" "berth logs, stdout"
	assert_eq "$stderr" "jerr-$$" "berth logs, stderr"
	user_unit_stopped 7

	UNIT=berth-spec-$BATS_TEST_NUMBER-$$-pass.service
	RUN_FLAGS="--log-driver passthrough" CTR_CMD="sh -c 'echo pout-$$; echo perr-$$ >&2; $LOOP'" user_unit
	usctl start "$UNIT" || fail "systemctl --user start failed: $(ujournal)"
	user_unit_started
	local fd
	for fd in 1 2; do
		assert_eq "$(readlink "/proc/$PID/fd/$fd")" "$(readlink "/proc/$MAIN/fd/$fd")" "the container's fd $fd (berth's)"
	done
	both() { ujournal | grep -q "pout-$$" && ujournal | grep -q "perr-$$"; }
	wait_until 30 both || fail "the lines are not the unit's: $(ujournal)"
	user_unit_stopped 7
}

@test "rootless: generate systemd --new: the unit it prints runs in the user's manager: active once the container runs, a clean stop" {
	user_setup
	local name=gen-$BATS_TEST_NUMBER-$$
	UNIT=container-$name.service
	as_user mkdir -p "$USER_HOME/.config/systemd/user"
	gen_unit ue "$name" >"$USER_HOME/.config/systemd/user/$UNIT"
	chown "$USER_NAME:" "$USER_HOME/.config/systemd/user/$UNIT"
	CLEANUP+=("remove_user_unit $UNIT")
	usctl daemon-reload
	usctl start "$UNIT" || fail "systemctl --user start $UNIT failed: $(ujournal)"
	assert_eq "$(usctl show -p ActiveState --value "$UNIT")" active "ActiveState"
	run ue ps --format '{{.Names}} {{.Status}}'
	[[ $output == "$name Up"* ]] || fail "berth ps: expected $name up, got: $output"
	PID=$(ue inspect --format '{{.State.Pid}}' "$name")
	CTR_ID=$(ue inspect --format '{{.Id}}' "$name")
	CTR_CG=$(sed -n 's/^0:://p' "/proc/$PID/cgroup")
	UNIT_CG=$(usctl show -p ControlGroup --value "$UNIT")
	MAIN=$(usctl show -p MainPID --value "$UNIT")
	assert_main_is_berth "$USER_BIN"
	assert_in_unit_group
	usctl stop "$UNIT" || fail "systemctl --user stop failed: $(ujournal)"
	assert_eq "$(usctl show -p Result --value "$UNIT")" success "Result (143 is its SuccessExitStatus=)"
	pid_dead "$PID" || fail "the container's process $PID outlived the unit"
	run ue ps -a -q
	assert_eq "$output" "" "berth ps -a after the stop"
}
