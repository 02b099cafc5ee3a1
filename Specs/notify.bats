#!/usr/bin/env bats
# Specs/containers.md "sdnotify and health checks", end to end: what each
# --sdnotify mode sends to $NOTIFY_SOCKET (a python3 listener on a unix
# datagram socket stands in for systemd) and what the container gets;
# health checks run by hand and by the supervisor, their record in
# inspect and ps, and the errors; as root and as an unprivileged user.
bats_require_minimum_version 1.5.0
load helpers

setup_file() { engine_setup_file; }
setup() { engine_setup; }
teardown() { engine_teardown; }

# Appends each datagram to LOG, then a newline (as podman's tests log socat's).
LISTENER=$(
	cat <<'PY'
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o777)
while True:
    data = s.recv(65536)
    with open(log, "ab") as f:
        f.write(data + b"\n")
PY
)

# start_listener — NOTIFY_SOCKET (exported) receives into NOTIFY_LOG.
start_listener() {
	NOTIFY_SOCKET=$BATS_TEST_TMPDIR/n.sock
	NOTIFY_LOG=$BATS_TEST_TMPDIR/notify.log
	: >"$NOTIFY_LOG"
	berth_bg "$BATS_TEST_TMPDIR/.listener.out" python3 -c "$LISTENER" "$NOTIFY_SOCKET" "$NOTIFY_LOG"
	wait_until 10 test -S "$NOTIFY_SOCKET" || fail "listener did not start: $(cat "$BATS_TEST_TMPDIR/.listener.out")"
	export NOTIFY_SOCKET NOTIFY_LOG
}

# received — what the listener got so far (a moment for a datagram in flight).
received() {
	sleep 0.3
	cat "$NOTIFY_LOG"
}

# The berth command line `e` runs, for a background foreground run (BG_PID is berth's pid).
berth_cmd() { echo "$BERTH" --root "$STATE" --runroot "$RUNROOT"; }

# health NAME FIELD — a field of .State.Health.
health() { e inspect -f "{{json .State.Health}}" "$1" | jq -r "$2"; }

status_has() { [[ "$(e ps -a --format '{{.Names}} {{.Status}}' | grep "^$1 ")" == *"$2"* ]]; }

# ------------------------------------------------------------------ sdnotify

@test "--sdnotify conmon, foreground: MAINPID is berth's own and READY=1 once the container runs; the container gets no NOTIFY_SOCKET" {
	start_listener
	ctl=$BATS_TEST_TMPDIR/ctl
	mkdir -p "$ctl" && chmod 0777 "$ctl"
	# shellcheck disable=SC2046
	berth_bg "$BATS_TEST_TMPDIR/run.out" $(berth_cmd) run --rm --sdnotify conmon -v "$ctl:/ctl" busybox \
		sh -c 'echo "env:[${NOTIFY_SOCKET-unset}]"; test -e /run/notify && echo "has /run/notify"; while [ ! -e /ctl/stop ]; do sleep 0.1; done'
	pid=$BG_PID
	wait_until 20 file_has "$NOTIFY_LOG" READY=1 || fail "no READY=1: $(cat "$BATS_TEST_TMPDIR/run.out")"
	assert_eq "$(received)" "MAINPID=$pid
READY=1" "what the foreground berth sent"
	touch "$ctl/stop"
	berth_wait_bg "$pid" 20 || fail "run failed: $(cat "$BATS_TEST_TMPDIR/run.out")"
	assert_eq "$(cat "$BATS_TEST_TMPDIR/run.out")" "env:[unset]"
}

@test "--sdnotify conmon, detached: the monitor is MAINPID and said so before run -d returned; inspect shows mode and socket" {
	start_listener
	run -0 e run -d --name c --sdnotify conmon busybox sleep 100
	# No waiting: the monitor sends before it lets run -d return.
	assert_eq "$(cat "$NOTIFY_LOG")" "MAINPID=$(e inspect -f '{{.State.ConmonPid}}' c)
READY=1"
	pid=$(e inspect -f '{{.State.ConmonPid}}' c)
	pid_alive "$pid"
	assert_eq "$(e inspect -f '{{.Config.SdNotifyMode}} {{.Config.SdNotifySocket}}' c)" "conmon $NOTIFY_SOCKET"
	run -0 e exec c sh -c 'echo "[${NOTIFY_SOCKET-unset}]"'
	assert_eq "$output" "[unset]"
}

@test "--sdnotify container (the default): the container's own socket at /run/notify/notify.sock, its READY=1 and STATUS passed on, its MAINPID not" {
	start_listener
	run -0 e run -d --name c busybox sh -c 'echo "$NOTIFY_SOCKET"; sleep 100'
	pid=$(e inspect -f '{{.State.ConmonPid}}' c)
	assert_eq "$(received)" "MAINPID=$pid" "before the container says anything"
	assert_eq "$(e inspect -f '{{.Config.SdNotifyMode}} {{.Config.SdNotifySocket}}' c)" "container $NOTIFY_SOCKET"
	assert_eq "$(e logs c)" "/run/notify/notify.sock"
	run -0 e exec c stat -c '%F %a' /run/notify/notify.sock
	assert_eq "$output" "socket 777"
	# busybox's logger sends one datagram to /dev/log: a syslog line, then ours.
	run -0 e exec c sh -c 'ln -s /run/notify/notify.sock /dev/log && logger "$(printf "hello\nREADY=1\nSTATUS=serving\nMAINPID=1\nFDSTORE=1")"'
	wait_until 10 file_has "$NOTIFY_LOG" READY=1
	assert_eq "$(received)" "MAINPID=$pid
READY=1
STATUS=serving"
}

@test "--sdnotify container without NOTIFY_SOCKET: no socket, no variable, nothing to send" {
	run -0 env -u NOTIFY_SOCKET "$BERTH" --root "$STATE" --runroot "$RUNROOT" run --rm busybox \
		sh -c 'echo "[${NOTIFY_SOCKET-unset}]"; test -e /run/notify && echo "has /run/notify"; true' <"$BERTH_EMPTY"
	assert_eq "$output" "[unset]"
}

@test "--sdnotify ignore: nothing sent, and the container gets no NOTIFY_SOCKET" {
	start_listener
	run -0 e run --rm --sdnotify ignore busybox sh -c 'echo "[${NOTIFY_SOCKET-unset}]"; test -e /run/notify && echo "has /run/notify"; true'
	assert_eq "$output" "[unset]"
	run -0 e create --name i --sdnotify ignore busybox true
	assert_eq "$(e inspect -f '{{.Config.SdNotifyMode}}:{{.Config.SdNotifySocket}}' i)" "ignore:"
	assert_eq "$(received)" ""
}

@test "--sdnotify healthy: MAINPID when it runs, READY=1 only once its check passes, once" {
	start_listener
	run -0 e run -d --name h --sdnotify healthy --health-cmd 'test -e /ready' --health-interval disable busybox sleep 100
	pid=$(e inspect -f '{{.State.ConmonPid}}' h)
	assert_eq "$(received)" "MAINPID=$pid"
	run -1 e healthcheck run h
	assert_eq "$output" "unhealthy"
	assert_eq "$(received)" "MAINPID=$pid" "after a failed check"
	e exec h touch /ready
	run -0 e healthcheck run h
	assert_eq "$output" ""
	assert_eq "$(received)" "MAINPID=$pid
READY=1"
	run -0 e healthcheck run h
	assert_eq "$(received)" "MAINPID=$pid
READY=1" "a second pass sends nothing more"
}

@test "--sdnotify healthy with automatic checks: READY=1 once the file the check looks for appears, even after it was unhealthy" {
	start_listener
	run -0 e run -d --name h --sdnotify healthy --health-cmd 'test -e /ready' --health-interval 1s --health-retries 1 busybox sleep 100
	pid=$(e inspect -f '{{.State.ConmonPid}}' h)
	wait_until 15 status_has h "(unhealthy)"
	assert_eq "$(received)" "MAINPID=$pid" "while the check fails"
	e exec h touch /ready
	wait_until 15 file_has "$NOTIFY_LOG" READY=1
	assert_eq "$(received)" "MAINPID=$pid
READY=1"
}

@test "--sdnotify errors: one line, exit 125, nothing created" {
	run --separate-stderr e run --rm --sdnotify bogus busybox true
	assert_status 125
	assert_fails_with '--sdnotify "bogus": expected container, conmon, healthy or ignore'
	run --separate-stderr e create --sdnotify healthy busybox true
	assert_status 125
	assert_fails_with '--sdnotify healthy needs a health check: give --health-cmd, or use an image with a HEALTHCHECK'
	run --separate-stderr e create --sdnotify healthy --no-healthcheck --health-interval 1s busybox true
	assert_status 125
	assert_fails_with '--sdnotify healthy needs a health check'
	run -0 e ps -a -q
	assert_eq "$output" ""
}

# ------------------------------------------------------------- health checks

@test "healthcheck run: 0 and silent when the check passes, 1 and 'unhealthy' when not; the record in inspect and ps" {
	run -0 e run -d --name h --health-cmd 'echo checking; test -e /ok' --health-interval disable --health-retries 2 busybox sleep 100
	assert_eq "$(health h .Status)" "starting"
	status_has h "(starting)"
	run -1 e healthcheck run h
	assert_eq "$output" "unhealthy"
	assert_eq "$(health h .Status)/$(health h .FailingStreak)" "starting/1" "one failure of 2 allowed"
	run -1 e healthcheck run h
	assert_eq "$(health h .Status)/$(health h .FailingStreak)" "unhealthy/2"
	status_has h "(unhealthy)"
	assert_eq "$(health h '.Log[-1].ExitCode')" "1"
	assert_eq "$(health h '.Log[-1].Output')" "checking"
	e exec h touch /ok
	run -0 e healthcheck run h
	assert_eq "$output" ""
	assert_eq "$(health h .Status)/$(health h .FailingStreak)" "healthy/0"
	assert_eq "$(health h '.Log | length')" "3"
	assert_eq "$(health h '.Log[-1] | (.ExitCode|tostring) + " " + (.Start|test("^[0-9-]+T")|tostring) + " " + (.End|test("^[0-9-]+T")|tostring)')" "0 true true"
	status_has h "Up "
	status_has h "(healthy)"
	for _ in 1 2 3 4 5; do e healthcheck run h; done
	assert_eq "$(health h '.Log | length')" "5" "the last five are kept"
}

@test "health check flags: podman's command forms, the defaults, the image's HEALTHCHECK" {
	run -0 e create --name a --health-cmd 'test -e /x' busybox true
	assert_eq "$(e inspect -f '{{json .Config.Healthcheck}}' a | jq -c '[.Test, .Interval, .Timeout, .Retries, .StartPeriod]')" \
		'[["CMD-SHELL","test -e /x"],30000000000,30000000000,3,0]'
	run -0 e create --name b --health-cmd '["/bin/test","-e","/x"]' --health-interval 1m30s --health-timeout 2s --health-retries 5 --health-start-period 500ms busybox true
	assert_eq "$(e inspect -f '{{json .Config.Healthcheck}}' b | jq -c '[.Test, .Interval, .Timeout, .Retries, .StartPeriod]')" \
		'[["CMD","/bin/test","-e","/x"],90000000000,2000000000,5,500000000]'
	run -0 e create --name c --health-cmd 'CMD /bin/true' --health-interval disable busybox true
	assert_eq "$(e inspect -f '{{json .Config.Healthcheck}}' c | jq -c '[.Test, .Interval]')" '[["CMD","/bin/true"],0]'
	run -0 e create --name d busybox true
	assert_eq "$(e inspect -f '{{json .Config.Healthcheck}}' d)" "null"
	run -0 e inspect -f '{{.State.Status}}' d
	# An image with a HEALTHCHECK (docker's config field), made by editing a saved archive.
	x=$BATS_TEST_TMPDIR/img
	mkdir -p "$x"
	e save -o "$BATS_TEST_TMPDIR/bb.tar" busybox
	tar -C "$x" -xf "$BATS_TEST_TMPDIR/bb.tar"
	cfg=$(jq -r '.[0].Config' "$x/manifest.json")
	jq -c '.config.Healthcheck = {"Test": ["CMD-SHELL", "test -e /tmp/ok"], "Interval": 2000000000, "Retries": 1}' "$x/$cfg" >"$x/hc.json"
	rm "$x/$cfg"
	jq -c '.[0].Config = "hc.json" | .[0].RepoTags = ["localhost/hc:latest"]' "$x/manifest.json" >"$x/m" && mv "$x/m" "$x/manifest.json"
	tar -C "$x" -cf "$BATS_TEST_TMPDIR/hc.tar" .
	e load -i "$BATS_TEST_TMPDIR/hc.tar"
	run -0 e create --name fromimage localhost/hc sleep 10
	assert_eq "$(e inspect -f '{{json .Config.Healthcheck}}' fromimage | jq -c '[.Test, .Interval, .Timeout, .Retries]')" \
		'[["CMD-SHELL","test -e /tmp/ok"],2000000000,30000000000,1]'
	run -0 e create --name overridden --health-retries 4 --health-interval 5s localhost/hc sleep 10
	assert_eq "$(e inspect -f '{{json .Config.Healthcheck}}' overridden | jq -c '[.Test[1], .Interval, .Retries]')" '["test -e /tmp/ok",5000000000,4]'
	run -0 e create --name none1 --no-healthcheck localhost/hc sleep 10
	run -0 e create --name none2 --health-cmd none localhost/hc sleep 10
	assert_eq "$(e inspect -f '{{json .Config.Healthcheck}}' none1) $(e inspect -f '{{json .Config.Healthcheck}}' none2)" "null null"
	# The image's check runs automatically (every 2s) and passes once /tmp/ok exists.
	run -0 e run -d --name auto localhost/hc sleep 100
	e exec auto touch /tmp/ok
	wait_until 15 status_has auto "(healthy)"
}

@test "health check errors: one line, exit 125, nothing created" {
	run --separate-stderr e create --health-cmd true --health-interval 5 busybox true
	assert_status 125
	assert_fails_with '--health-interval "5": expected a duration such as 30s, or disable'
	run --separate-stderr e create --health-cmd true --health-timeout 500ms busybox true
	assert_status 125
	assert_fails_with '--health-timeout "500ms": expected a duration of at least 1s, such as 30s'
	run --separate-stderr e run --rm --health-cmd true --health-retries 0 busybox true
	assert_status 125
	assert_fails_with '--health-retries "0": expected a number ≥ 1'
	run --separate-stderr e create --health-cmd true --health-start-period soon busybox true
	assert_status 125
	assert_fails_with '--health-start-period "soon": expected a duration such as 0s or 1m'
	run --separate-stderr e create --health-cmd true --no-healthcheck busybox true
	assert_status 125
	assert_fails_with '--no-healthcheck and --health-cmd conflict: give one of them'
	run --separate-stderr e create --health-cmd '' busybox true
	assert_status 125
	assert_fails_with '--health-cmd "": give a command, or none'
	run -0 e ps -a -q
	assert_eq "$output" ""
	# healthcheck run with nothing to run.
	e create --name plain busybox sleep 10
	run --separate-stderr e healthcheck run plain
	assert_status 125
	assert_fails_with 'container plain has no defined healthcheck'
	e create --name stopped --health-cmd true busybox sleep 10
	run --separate-stderr e healthcheck run stopped
	assert_status 125
	assert_fails_with 'container stopped is not running'
	run --separate-stderr e healthcheck run nosuch
	assert_status 125
	[[ ${#stderr_lines[@]} == 1 ]]
}

@test "a check that fails to run, one that outlives --health-timeout, and the start period" {
	run -0 e run -d --name h --health-cmd '["/no/such/check","x"]' --health-interval disable --health-retries 1 busybox sleep 100
	run -1 e healthcheck run h
	assert_eq "$output" "unhealthy"
	assert_eq "$(health h '.Log[-1].ExitCode') $(health h .Status)" "127 unhealthy"
	run -0 e run -d --name slow --health-cmd 'echo started; sleep 20' --health-timeout 1s --health-interval disable busybox sleep 100
	SECONDS=0
	run -1 e healthcheck run slow
	((SECONDS < 10)) || fail "the check was not killed at its timeout (${SECONDS}s)"
	assert_eq "$(health slow '.Log[-1].ExitCode')" "-1"
	assert_eq "$(health slow '.Log[-1].Output')" "started
healthcheck command exceeded timeout of 1s"
	run -0 e exec slow sh -c 'ps -o args | grep -c "[s]leep 20" || true'
	assert_eq "$output" "0" "the timed-out check's process is gone"
	run -0 e run -d --name early --health-cmd false --health-start-period 1m --health-retries 1 --health-interval disable busybox sleep 100
	run -1 e healthcheck run early
	assert_eq "$output" "starting"
	assert_eq "$(health early .Status)/$(health early .FailingStreak)" "starting/0"
}

@test "automatic checks every --health-interval: unhealthy after --health-retries failures, healthy again once it passes" {
	run -0 e run -d --name h --health-cmd 'test -e /ok' --health-interval 1s --health-retries 2 busybox sleep 100
	wait_until 15 status_has h "(unhealthy)"
	(($(health h .FailingStreak) >= 2))
	e exec h touch /ok
	wait_until 15 status_has h "(healthy)"
	assert_eq "$(health h .FailingStreak)" "0"
	assert_eq "$(e inspect -f '{{.State.Status}}' h)" "running"
}

@test "automatic checks under a foreground run, which goes on relaying the container's output meanwhile" {
	ctl=$BATS_TEST_TMPDIR/ctl
	mkdir -p "$ctl" && chmod 0777 "$ctl"
	# A check that takes 2s of every 1s interval: the ticks keep coming while it runs.
	# shellcheck disable=SC2046
	berth_bg "$BATS_TEST_TMPDIR/run.out" $(berth_cmd) run --name fg --health-cmd 'sleep 2' --health-interval 1s -v "$ctl:/ctl" busybox \
		sh -c 'i=0; while [ ! -e /ctl/stop ]; do i=$((i+1)); echo "tick $i"; sleep 0.2; done'
	pid=$BG_PID
	wait_until 20 status_has fg "(healthy)" || fail "never healthy: $(cat "$BATS_TEST_TMPDIR/run.out")"
	before=$(grep -c tick "$BATS_TEST_TMPDIR/run.out")
	sleep 1.5
	after=$(grep -c tick "$BATS_TEST_TMPDIR/run.out")
	((after >= before + 4)) || fail "output stalled while checks ran: $before then $after ticks"
	touch "$ctl/stop"
	berth_wait_bg "$pid" 20 || fail "run failed: $(cat "$BATS_TEST_TMPDIR/run.out")"
	assert_eq "$(e inspect -f '{{.State.Status}}' fg)" "exited"
	run -0 e ps -a --format '{{.Names}} {{.Status}}'
	assert_not_contains "$output" "(healthy)" "an exited container's status"
}
