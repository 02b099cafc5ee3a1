#!/usr/bin/env bats
# Specs/containers.md, end to end: containers from images with the
# podman-style commands, as root and as an unprivileged user (BERTH_AS).
# Each test has its own store and runtime state (engine_setup).
bats_require_minimum_version 1.5.0
load helpers

setup_file() { engine_setup_file; }
setup() { engine_setup; }
teardown() { engine_teardown; }

@test "run: foreground, the container's output and exit code; ps -a shows it exited" {
	run --separate-stderr e run --name first busybox sh -c 'echo out; echo err >&2; exit 3'
	assert_status 3
	assert_eq "$output" "out"
	assert_eq "$stderr" "err"
	run e ps -a --format '{{.Names}} {{.Status}}'
	assert_contains "$output" "first Exited (3)"
}

@test "a foreground run does not load libarchive (loaded on first tar use only); export, which uses it, still works" {
	berth_bg "$BATS_TEST_TMPDIR/run.out" "$BERTH" --root "$STATE" --runroot "$RUNROOT" run --name lazy busybox sleep 30
	local pid=$BG_PID
	running() { [[ $(e inspect --format '{{.State.Status}}' lazy 2>/dev/null) == running ]]; }
	wait_until 30 running || fail "the container did not start: $(cat "$BATS_TEST_TMPDIR/run.out")"
	run grep -c libarchive "/proc/$pid/maps"
	assert_eq "$output" 0 "libarchive mappings of the foreground berth ($pid)"
	e export -o "$BATS_TEST_TMPDIR/lazy.tar" lazy
	tar -tf "$BATS_TEST_TMPDIR/lazy.tar" | grep -qx 'bin/busybox' || fail "no bin/busybox in the export: $(tar -tf "$BATS_TEST_TMPDIR/lazy.tar" | head)"
	e rm -f lazy >/dev/null
	berth_wait_bg "$pid" 30 || true
}

@test "run -d: a monitor keeps the container; ps, logs, exec, stop, rm" {
	run e run -d --name web busybox sh -c 'trap "echo bye; exit 0" TERM; echo started; while true; do sleep 0.1; done'
	assert_status 0
	id=$output
	[[ $id =~ ^[0-9a-f]{64}$ ]] || fail "not an id: $id"
	run e ps --format '{{.ID}} {{.Names}} {{.Status}}'
	assert_contains "$output" "${id:0:12} web Up"
	wait_until 5 bash -c "\"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" logs web | grep -q started"
	run e exec web sh -c 'echo in $HOSTNAME; exit 4'
	assert_status 4
	assert_eq "$output" "in ${id:0:12}"
	run e stop web
	assert_status 0
	assert_eq "$output" "web"
	run e inspect --format '{{.State.Status}} {{.State.ExitCode}}' web
	assert_eq "$output" "exited 0"
	run e logs web
	assert_eq "$output" $'started\nbye'
	run e rm web
	assert_status 0
	run e ps -a -q
	assert_eq "$output" ""
}

@test "names and ids: generated names, unique names, lookup by id prefix" {
	id=$(e create busybox true)
	name=$(e inspect --format '{{.Name}}' "$id")
	[[ $name =~ ^[a-z]+_[a-z]+[0-9]*$ ]] || fail "generated name: $name"
	run e inspect --format '{{.Id}}' "${id:0:5}"
	assert_eq "$output" "$id"
	e create --name dup busybox true >/dev/null
	run --separate-stderr e create --name dup busybox true
	assert_status 125
	assert_contains "$stderr" 'the container name "dup" is already in use'
	run --separate-stderr e inspect nosuch
	assert_status 125
	assert_contains "$stderr" 'no such object: "nosuch"'
	run --separate-stderr e rm nosuch
	assert_status 125
	assert_eq "$stderr" 'berth: no container with name or ID "nosuch" found'
	run e rm -f nosuch
	assert_status 0
	run e ps -a -q --no-trunc
	assert_contains "$output" "$id"
	run e rename dup renamed
	assert_status 0
	run e ps -a --format '{{.Names}}' --filter name=renamed
	assert_eq "$output" "renamed"
}

@test "create, start, start -a, wait, restart" {
	id=$(e create --name job busybox sh -c 'echo ran; exit 7')
	run e ps -a --format '{{.Status}}' --filter id="${id:0:12}"
	assert_eq "$output" "Created"
	run e start job
	assert_eq "$output" "job"
	run e wait job
	assert_eq "$output" "7"
	run e start -a job
	assert_status 7
	assert_eq "$output" "ran"
	run e logs job
	assert_eq "$output" $'ran\nran'
	e run -d --name sleeper busybox sleep 1000 >/dev/null
	pid1=$(e inspect --format '{{.State.Pid}}' sleeper)
	run e restart -t 0 sleeper
	assert_status 0
	pid2=$(e inspect --format '{{.State.Pid}}' sleeper)
	[[ $pid1 != "$pid2" && $pid2 -gt 0 ]] || fail "restart: pid $pid1 -> $pid2"
	run e inspect --format '{{.State.Status}}' sleeper
	assert_eq "$output" "running"
}

@test "errors: unknown image, bad flags, exec into a stopped container, rm of a running container" {
	run --separate-stderr e run --pull never nosuchimage true
	assert_status 125
	assert_contains "$stderr" "nosuchimage: image not known"
	run --separate-stderr e run --restart sometimes busybox true
	assert_status 125
	assert_contains "$stderr" '--restart "sometimes"'
	run --separate-stderr e run --ulimit nofile=x busybox true
	assert_status 125
	assert_contains "$stderr" '--ulimit "nofile=x"'
	run --separate-stderr e run --cap-add NOPE busybox true
	assert_status 125
	assert_contains "$stderr" '--cap-add "NOPE": unknown capability'
	run --separate-stderr e run -v relative:dir busybox true
	assert_status 125
	assert_contains "$stderr" 'must be absolute'
	run --separate-stderr e run -v "$BATS_TEST_TMPDIR/missing:/m" busybox true
	assert_status 125
	assert_contains "$stderr" "bind mount source \"$BATS_TEST_TMPDIR/missing\" does not exist"
	run --separate-stderr e run --bogus busybox true
	assert_status 125
	run -127 --separate-stderr e run busybox /nonexistent
	assert_status 127
	assert_contains "$stderr" '/nonexistent'
	run -126 --separate-stderr e run busybox /etc/passwd
	assert_status 126
	e create --name stopped busybox true >/dev/null
	run --separate-stderr e exec stopped true
	assert_status 125
	assert_contains "$stderr" "container stopped is not running"
	e run -d --name busy busybox sleep 1000 >/dev/null
	run --separate-stderr e rm busy
	assert_status 125
	assert_contains "$stderr" "cannot remove container busy as it is running"
	run e rm -f busy
	assert_status 0
	# Nothing is left of the failed runs but their records (docker keeps them too).
	run e ps -a --format '{{.Names}}'
	assert_not_contains "$output" "busy"
}

@test "run flags: -e, --env-file, -u, -w, --entrypoint, --hostname, --read-only, --tmpfs, --label" {
	printf 'A=from-file\n# a comment\nB=2\n' >"$BATS_TEST_TMPDIR/env"
	run e run --rm -e X=1 --env-file "$BATS_TEST_TMPDIR/env" -e B=3 busybox sh -c 'echo $X $A $B'
	assert_eq "$output" "1 from-file 3"
	run e run --rm -u user busybox id
	assert_eq "$output" "uid=1000(user) gid=1000(user)"
	run e run --rm -u nobody:root busybox sh -c 'id -u; id -g'
	assert_eq "$output" $'65534\n0'
	run --separate-stderr e run --rm -u ghost busybox true
	assert_status 125
	assert_contains "$stderr" 'user "ghost": no such user'
	run e run --rm -w /etc busybox pwd
	assert_eq "$output" "/etc"
	run e run --rm --entrypoint echo busybox via entrypoint
	assert_eq "$output" "via entrypoint"
	run e run --rm --hostname box busybox hostname
	assert_eq "$output" "box"
	run e run --rm --read-only --tmpfs /scratch busybox sh -c 'touch /x 2>/dev/null && echo wrote-root; touch /scratch/y && echo wrote-tmpfs; grep " /scratch " /proc/mounts | cut -d" " -f3'
	assert_eq "$output" $'wrote-tmpfs\ntmpfs'
	e create --name labelled --label team=ops busybox true >/dev/null
	run e inspect --format '{{.Config.Labels.team}}' labelled
	assert_eq "$output" "ops"
	run e ps -a --filter label=team=ops --format '{{.Names}}'
	assert_eq "$output" "labelled"
}

@test "security flags: --cap-add/--cap-drop, --privileged, no-new-privileges, seccomp=unconfined" {
	capeff() { e run --rm "$@" busybox sh -c 'grep CapEff /proc/self/status | cut -f2'; }
	default=$(capeff)
	dropped=$(capeff --cap-drop ALL)
	assert_eq "$dropped" "0000000000000000"
	added=$(capeff --cap-add NET_ADMIN)
	[[ $added != "$default" ]] || fail "--cap-add NET_ADMIN changed nothing ($default)"
	privileged=$(capeff --privileged)
	[[ $privileged != "$default" && $privileged != "$added" ]] || fail "--privileged: $privileged"
	run e run --rm busybox sh -c 'grep NoNewPrivs /proc/self/status | cut -f2'
	assert_eq "$output" "0"
	run e run --rm --security-opt no-new-privileges busybox sh -c 'grep NoNewPrivs /proc/self/status | cut -f2'
	assert_eq "$output" "1"
	run e run --rm busybox sh -c 'grep Seccomp: /proc/self/status | cut -f2'
	assert_eq "$output" "2"
	run e run --rm --security-opt seccomp=unconfined busybox sh -c 'grep Seccomp: /proc/self/status | cut -f2'
	assert_eq "$output" "0"
	run --separate-stderr e run --rm --security-opt bogus busybox true
	assert_status 125
	assert_contains "$stderr" '--security-opt "bogus"'
	run e run --rm --ulimit nofile=512:1024 busybox sh -c 'ulimit -n; ulimit -Hn'
	assert_eq "$output" $'512\n1024'
}

@test "--init: berth is pid 1, forwards signals and reaps zombies" {
	run e run --rm --init busybox sh -c 'echo $$; cat /proc/1/cmdline | tr "\0" " "'
	assert_eq "${lines[0]}" "2"
	# Zombies of orphans are reaped: an orphan's child exits, nothing stays <defunct>.
	run e run --rm --init busybox sh -c '(sleep 0.1 &) ; sleep 0.5; ps -o stat | grep -c Z'
	assert_eq "$output" "0"
	# The stop signal reaches the process through the init: sh as pid 2 gets SIGTERM's default.
	# (Without it, sleep as pid 1 would ignore SIGTERM and end by SIGKILL: 137.)
	e run -d --init --name initd busybox sleep 1000 >/dev/null
	e stop -t 20 initd >/dev/null
	run e inspect --format '{{.State.ExitCode}}' initd
	assert_eq "$output" "143"
}

@test "--stop-signal and --stop-timeout decide how stop ends a container" {
	e run -d --name usr1 --stop-signal USR1 busybox sh -c 'trap "echo got-usr1; exit 5" USR1; while true; do sleep 0.1; done' >/dev/null
	e stop usr1 >/dev/null
	run e inspect --format '{{.State.ExitCode}} {{.Config.StopSignal}}' usr1
	assert_eq "$output" "5 USR1"
	# pid 1 ignores SIGTERM: after the timeout, SIGKILL.
	e run -d --name stubborn --stop-timeout 1 busybox sleep 1000 >/dev/null
	e stop stubborn >/dev/null
	run e inspect --format '{{.State.ExitCode}} {{.Config.StopTimeout}}' stubborn
	assert_eq "$output" "137 1"
}

@test "kill -s sends a signal; exec -e -w -u -d; --privileged exec" {
	e run -d --name target busybox sh -c 'trap "echo hup >> /tmp/log" HUP; while true; do sleep 0.1; done' >/dev/null
	e kill -s HUP target >/dev/null
	wait_until 5 bash -c "\"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" exec target cat /tmp/log | grep -q hup"
	run e exec -e K=V -w /etc -u user target sh -c 'echo $K $(pwd) $(id -u)'
	assert_eq "$output" "V /etc 1000"
	e exec -d target sh -c 'echo detached > /tmp/d'
	wait_until 5 bash -c "\"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" exec target cat /tmp/d | grep -q detached"
	run e exec --privileged target sh -c 'grep CapEff /proc/self/status | cut -f2'
	normal=$(e exec target sh -c 'grep CapEff /proc/self/status | cut -f2')
	[[ $output != "$normal" ]] || fail "--privileged exec has the same capabilities"
	run e exec -i target cat <<<"piped"
	run --separate-stderr e kill -s NOPE target
	assert_status 125
	assert_contains "$stderr" 'invalid signal "NOPE"'
	e kill target >/dev/null
	e wait target >/dev/null
	run --separate-stderr e kill target
	assert_status 125
	assert_contains "$stderr" "it is not running"
}

@test "--rm, -d --rm, --cidfile, --replace, container prune" {
	e run --rm --name gone busybox true
	run e ps -a -q
	assert_eq "$output" ""
	e run -d --rm --name gone-too busybox sh -c 'sleep 0.3'
	wait_until 10 bash -c "[[ -z \$(\"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" ps -a -q) ]]"
	e run -d --cidfile "$BATS_TEST_TMPDIR/cid" --name c1 busybox sleep 1000 >/dev/null
	run e inspect --format '{{.Name}}' "$(cat "$BATS_TEST_TMPDIR/cid")"
	assert_eq "$output" "c1"
	run --separate-stderr e run --cidfile "$BATS_TEST_TMPDIR/cid" busybox true
	assert_status 125
	assert_contains "$stderr" "already exists"
	old=$(cat "$BATS_TEST_TMPDIR/cid")
	new=$(e run -d --replace --name c1 busybox sleep 1000)
	[[ $new != "$old" ]] || fail "--replace kept the old container"
	run e ps -a --format '{{.ID}}'
	assert_eq "$output" "${new:0:12}"
	e run --name done1 busybox true
	e create --name made busybox true >/dev/null
	run e container prune -f
	assert_eq "$(echo "$output" | wc -l)" "2"
	run e ps -a --format '{{.Names}}'
	assert_eq "$output" "c1"
}

@test "--restart on-failure:N and always are honoured by the monitor; stop ends them" {
	e run -d --name flaky --restart on-failure:2 busybox sh -c 'echo try; exit 1' >/dev/null
	wait_until 20 bash -c "[[ \$(\"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" inspect --format '{{.RestartCount}} {{.State.Status}}' flaky) == '2 exited' ]]"
	run e logs flaky
	assert_eq "$output" $'try\ntry\ntry'
	e run -d --name forever --restart always busybox sh -c 'sleep 0.2; exit 0' >/dev/null
	wait_until 20 bash -c "(( \$(\"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" inspect --format '{{.RestartCount}}' forever) >= 2 ))"
	e stop -t 1 forever >/dev/null
	count=$(e inspect --format '{{.RestartCount}}' forever)
	sleep 1
	run e inspect --format '{{.RestartCount}} {{.State.Status}}' forever
	assert_eq "$output" "$count exited"
	# A new start brings the policy back.
	e start forever >/dev/null
	wait_until 20 bash -c "(( \$(\"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" inspect --format '{{.RestartCount}}' forever) > $count ))"
	e stop -t 1 forever >/dev/null
	run --separate-stderr e run --rm --restart always busybox true
	assert_status 125
	assert_contains "$stderr" "conflict"
}

@test "a killed monitor: the container goes with it and is exited (unknown), not running forever" {
	e run -d --name orphan busybox sleep 1000 >/dev/null
	monitor=$(e inspect --format '{{.State.ConmonPid}}' orphan)
	pid=$(e inspect --format '{{.State.Pid}}' orphan)
	[[ $monitor -gt 0 && $pid -gt 0 ]] || fail "monitor $monitor, pid $pid"
	kill -KILL "$monitor"
	wait_until 5 pid_dead "$pid"
	run e ps -a --format '{{.Names}} {{.Status}}'
	assert_contains "$output" "orphan Exited (unknown)"
	run e inspect --format '{{.State.Status}} {{.State.ExitCodeUnknown}}' orphan
	assert_eq "$output" "exited true"
	# It can be started again.
	e start orphan >/dev/null
	run e inspect --format '{{.State.Status}}' orphan
	assert_eq "$output" "running"
}

@test "--network none has only lo; host shares the host's interfaces (more in network.bats)" {
	run e run --rm --network none busybox cat /proc/net/dev
	assert_eq "$(grep : <<<"$output" | cut -d: -f1 | tr -d ' ')" "lo"
	run e run --rm --network host busybox cat /proc/net/dev
	assert_eq "$(grep -c : <<<"$output")" "$(grep -c : /proc/net/dev)"
	run --separate-stderr e run --rm --network nosuchnet busybox true
	assert_status 125
	assert_eq "$stderr" 'berth: network "nosuchnet" not found'
}

@test "resource limits: --memory/--cpus/--pids-limit need cgroup v2 controllers, else a clear error and nothing left" {
	if [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw memory /sys/fs/cgroup/cgroup.controllers && [[ $BERTH_AS == root ]]; then
		run e run --rm --memory 64m busybox cat /sys/fs/cgroup/memory.max
		assert_eq "$output" "67108864"
	else
		run --separate-stderr e run --rm --memory 64m busybox true
		assert_status 125
		assert_contains "$stderr" "memory"
	fi
	run --separate-stderr e run --rm --memory lots busybox true
	assert_status 125
	assert_contains "$stderr" '--memory "lots"'
	run --separate-stderr e run --rm --cpus -1 busybox true
	assert_status 125
}

@test "inspect: containers and images, docker-like JSON; --format with json" {
	e create --name insp busybox echo hi >/dev/null
	run e inspect insp
	assert_status 0
	assert_eq "$(jq -r '.[0].Name' <<<"$output")" "insp"
	assert_eq "$(jq -r '.[0].Config.Cmd | join(" ")' <<<"$output")" "echo hi"
	assert_eq "$(jq -r '.[0].State.Status' <<<"$output")" "created"
	run e inspect --type image busybox
	assert_eq "$(jq -r '.[0].Config.Cmd[0]' <<<"$output")" "sh"
	run e inspect --format '{{json .Config.Cmd}}' insp
	assert_eq "$output" '["echo","hi"]'
	run e ps -a --format json
	assert_eq "$(jq -r '.[0].Names' <<<"$output")" "insp"
	run e ps -a --format 'table {{.Names}}\t{{.Status}}'
	assert_contains "${lines[0]}" "NAMES"
	run --separate-stderr e ps --format '{{.Nope}}'
	run e port insp
	assert_status 0
	assert_eq "$output" ""
}

@test "rootless --userns=keep-id: the user's own uid inside" {
	[[ $BERTH_AS == rootless ]] || skip "keep-id is for rootless containers (as root it is refused: tested below)"
	run e run --rm --userns keep-id busybox id -u
	assert_eq "$output" "$(id -u)"
	touch "$BATS_TEST_TMPDIR/mine"
	run e run --rm --userns keep-id -v "$BATS_TEST_TMPDIR:/h" busybox stat -c %u /h/mine
	assert_eq "$output" "$(id -u)"
}

@test "as root --userns=keep-id is refused" {
	[[ $BERTH_AS == root ]] || skip "rootless: keep-id is allowed (tested above)"
	run --separate-stderr e run --rm --userns keep-id busybox true
	assert_status 125
	assert_contains "$stderr" "keep-id is for rootless containers"
}

@test "parallel: 8 workers × 100 mixed run/create/rm/ps, zero failures, zero leftovers" {
	worker() {
		local w=$1 i failures=0
		for ((i = 1; i <= 100; i++)); do
			case $((i % 4)) in
			0) "$BERTH" --root "$STATE" --runroot "$RUNROOT" run --rm busybox true ;;
			1) "$BERTH" --root "$STATE" --runroot "$RUNROOT" create --name "w$w-$i" busybox true >/dev/null ;;
			2) "$BERTH" --root "$STATE" --runroot "$RUNROOT" rm "w$w-$((i - 1))" >/dev/null ;;
			3) "$BERTH" --root "$STATE" --runroot "$RUNROOT" ps -a -q >/dev/null ;;
			esac <"$BERTH_EMPTY" 2>>"$BATS_TEST_TMPDIR/errors" || failures=$((failures + 1))
		done
		echo "$failures" >"$BATS_TEST_TMPDIR/failures.$w"
	}
	for w in 1 2 3 4 5 6 7 8; do worker "$w" & done
	wait
	total=$(cat "$BATS_TEST_TMPDIR"/failures.* | awk '{ s += $1 } END { print s }')
	[[ $total == 0 ]] || fail "$total failures: $(sort "$BATS_TEST_TMPDIR/errors" | uniq -c | head)"
	run e ps -a -q
	assert_eq "$output" ""
	assert_eq "$(ls -A "$STATE/containers")" ""
	assert_eq "$(ls -A "$STATE/tmp" 2>/dev/null)" ""
	assert_eq "$(ls -A "$RUNROOT" | grep -v '^@' || true)" ""
	run e system check
	assert_status 0
}

@test "kill -9 of berth at any moment: the next command repairs, system check is clean" {
	for i in $(seq 1 24); do
		case $((i % 3)) in
		0) "$BERTH" --root "$STATE" --runroot "$RUNROOT" run --rm busybox sh -c 'sleep 0.05' <"$BERTH_EMPTY" >/dev/null 2>&1 & ;;
		1) "$BERTH" --root "$STATE" --runroot "$RUNROOT" run --name "k$i" busybox true <"$BERTH_EMPTY" >/dev/null 2>&1 & ;;
		2) "$BERTH" --root "$STATE" --runroot "$RUNROOT" run -d --name "k$i" busybox sleep 1000 <"$BERTH_EMPTY" >/dev/null 2>&1 & ;;
		esac
		pid=$!
		sleep "0.0$((RANDOM % 10))"
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	# Every record reads; none claims to run without a process.
	run e ps -a --format '{{.Names}} {{.State}} {{.Pid}}'
	assert_status 0
	while read -r name state pid; do
		[[ -z $name ]] && continue
		if [[ $state == running ]]; then pid_alive "$pid" || fail "$name is 'running' with a dead pid $pid"; fi
	done <<<"$output"
	run e rm --all --force
	assert_status 0
	run e ps -a -q
	assert_eq "$output" ""
	run e system check
	assert_status 0
	assert_eq "$(ls -A "$RUNROOT" | grep -v '^@' || true)" ""
	[[ -z $(procs_using "$STATE") ]] || fail "processes left: $(procs_using "$STATE")"
}

# --- tools (attach, top, stats, cp, commit, export, system df/prune) ---

@test "attach: output from now on, until the container exits, then its exit code" {
	e run -d --name talker busybox sh -c 'echo before; sleep 2; echo after; echo late >&2; exit 3' >/dev/null
	wait_until 5 bash -c "\"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" logs talker | grep -q before"
	run --separate-stderr e attach --no-stdin talker
	assert_status 3
	assert_eq "$output" "after"
	assert_eq "$stderr" "late"
	run --separate-stderr e attach talker
	assert_status 125
	assert_eq "$stderr" "berth: you can only attach to running containers: talker is exited"
	# With -i, what attach reads goes to the container's stdin.
	e run -d -i --name reader busybox sh -c 'read line; echo "got $line"; exit 4' >/dev/null
	printf 'hello\n' >"$BATS_TEST_TMPDIR/input"
	run timeout 20 "$BERTH" --root "$STATE" --runroot "$RUNROOT" attach reader <"$BATS_TEST_TMPDIR/input"
	assert_status 4
	assert_eq "$output" "got hello"
	# Signals berth gets go to the container (--sig-proxy, the default).
	e run -d --name trapper busybox sh -c 'trap "echo caught; exit 9" USR1; while true; do sleep 0.1; done' >/dev/null
	"$BERTH" --root "$STATE" --runroot "$RUNROOT" attach trapper <"$BERTH_EMPTY" >"$BATS_TEST_TMPDIR/attach.out" 2>&1 &
	apid=$!
	sleep 1
	kill -USR1 "$apid"
	wait "$apid" && rc=0 || rc=$?
	assert_eq "$rc" "9"
	assert_eq "$(cat "$BATS_TEST_TMPDIR/attach.out")" "caught"
	# A foreground container has no monitor to attach to.
	"$BERTH" --root "$STATE" --runroot "$RUNROOT" run --name fg busybox sleep 3 <"$BERTH_EMPTY" >/dev/null 2>&1 &
	fgpid=$!
	wait_until 5 bash -c "[[ \$(\"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" inspect -f '{{.State.Status}}' fg 2>/dev/null) == running ]]"
	run --separate-stderr e attach fg
	assert_status 125
	assert_contains "$stderr" "has no monitor to attach to"
	wait "$fgpid" || true
	run --separate-stderr e attach nosuch
	assert_status 125
	assert_eq "$stderr" 'berth: no container with name or ID "nosuch" found'
}

@test "top: podman's columns as the container sees them, descriptors, ps options" {
	e run -d --name sleeper busybox sleep 1000 >/dev/null
	e exec -d sleeper sleep 999
	wait_until 5 bash -c "\"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" top sleeper | grep -q 'sleep 999'"
	run e top sleeper
	assert_status 0
	[[ ${lines[0]} =~ ^USER\ +PID\ +PPID\ +%CPU\ +ELAPSED\ +TTY\ +TIME\ +COMMAND$ ]] || fail "header: ${lines[0]}"
	read -r user pid ppid cpu elapsed tty time cmd <<<"${lines[1]}"
	assert_eq "$user $pid $ppid $tty $cmd" "root 1 0 ? sleep 1000"
	[[ $cpu =~ ^[0-9]+\.[0-9]{3}$ && $elapsed =~ s$ && $time =~ s$ ]] || fail "row: ${lines[1]}"
	assert_eq "${#lines[@]}" 3
	run e top sleeper pid,args
	assert_eq "${lines[0]}" "PID  COMMAND"
	assert_eq "${lines[1]}" "1    sleep 1000"
	assert_contains "${lines[2]}" "sleep 999"
	# Anything else is ps(1)'s: its rows for the container's processes (host pids).
	run e top sleeper -o pid,comm
	assert_status 0
	assert_contains "${lines[0]}" "PID"
	assert_eq "${#lines[@]}" 3
	assert_contains "$output" "sleep"
	e stop -t 0 sleeper >/dev/null
	run --separate-stderr e top sleeper
	assert_status 125
	assert_eq "$stderr" "berth: top can only be used on running containers: sleeper is exited"
}

@test "stats: CPU, memory and pids from the container's cgroup, -- for what it cannot give" {
	e run -d --name busy busybox sleep 1000 >/dev/null
	run e stats --no-stream --format '{{.Name}} {{.PIDs}}' busy
	assert_status 0
	assert_eq "$output" "busy 1"
	run e stats --no-stream
	[[ ${lines[0]} =~ ^ID\ +NAME\ +CPU\ %\ +MEM\ USAGE\ /\ LIMIT\ +MEM\ %\ +NET\ IO\ +BLOCK\ IO\ +PIDS$ ]] || fail "header: ${lines[0]}"
	assert_contains "${lines[1]}" "busy"
	run e stats --no-stream --format json busy
	assert_status 0
	assert_eq "$(jq -r '.[0].name, .[0].pids' <<<"$output")" $'busy\n1'
	[[ $(jq -r '.[0].cpu_percent' <<<"$output") =~ ^[0-9]+\.[0-9]{2}%$ ]] || fail "cpu: $output"
	[[ $(jq -r '.[0].mem_usage' <<<"$output") =~ ^(--|[0-9.]+\ [kMG]?B)\ /\ (--|[0-9.]+\ [kMGT]?B)$ ]] || fail "memory: $output"
	# Without --no-stream it refreshes until interrupted.
	run timeout 3 "$BERTH" --root "$STATE" --runroot "$RUNROOT" stats --interval 1 --format '{{.Name}}' busy
	assert_status 124
	((${#lines[@]} >= 2)) || fail "expected at least two refreshes: $output"
	e create --name idle busybox true >/dev/null
	run --separate-stderr e stats --no-stream idle
	assert_status 125
	assert_eq "$stderr" "berth: cannot show the stats of container idle: it is not running"
	run e stats --no-stream -a --format '{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}'
	assert_contains "$output" "idle -- -- / -- 0"
	run --separate-stderr e stats --no-stream nosuch
	assert_status 125
	assert_eq "$stderr" 'berth: no container with name or ID "nosuch" found'
}

@test "cp: files and directories both ways, running, stopped and never started containers" {
	dir=$BATS_TEST_TMPDIR/host
	mkdir -p "$dir/indir/deep"
	echo payload >"$dir/in"
	echo deep >"$dir/indir/deep/f"
	e run -d --name box busybox sh -c 'mkdir -p /srv/tree/sub; echo leaf >/srv/tree/sub/leaf; echo top >/srv/tree/top; sleep 1000' >/dev/null
	wait_until 5 e exec box test -f /srv/tree/top
	run e cp box:/srv/tree/top "$dir/"
	assert_status 0
	assert_eq "$(cat "$dir/top")" "top"
	assert_eq "$(stat -c %u "$dir/top")" "$(id -u)" "owner of a file copied out"
	# A directory onto a missing path becomes it; onto an existing directory goes into it; DIR/. copies what is in it.
	e cp box:/srv/tree "$dir/copy"
	assert_eq "$(cat "$dir/copy/sub/leaf")" "leaf"
	e cp box:/srv/tree "$dir/copy"
	assert_eq "$(cat "$dir/copy/tree/sub/leaf")" "leaf"
	e cp box:/srv/tree/. "$dir/contents"
	assert_eq "$(cat "$dir/contents/top")" "top"
	# Into the running container: owned by its root.
	e cp "$dir/in" box:/srv/
	run e exec box sh -c 'cat /srv/in; stat -c %u:%g /srv/in'
	assert_eq "$output" $'payload\n0:0'
	e cp "$dir/indir" box:/srv/newdir
	run e exec box cat /srv/newdir/deep/f
	assert_eq "$output" "deep"
	# - as DEST: a tar on standard output.
	e cp box:/srv/tree - >"$dir/tree.tar"
	assert_eq "$(tar -tf "$dir/tree.tar" | sort | tr '\n' ' ')" "tree/ tree/sub/ tree/sub/leaf tree/top "
	# Stopped: read and written through its layers.
	e stop -t 0 box >/dev/null
	e cp box:/srv/in "$dir/back"
	assert_eq "$(cat "$dir/back")" "payload"
	e cp "$dir/in" box:/srv/while-stopped
	e start box >/dev/null
	run e exec box cat /srv/while-stopped
	assert_eq "$output" "payload"
	# Never started: the file is there when it starts.
	e create --name reader busybox cat /input >/dev/null
	e cp "$dir/in" reader:/input
	run e start -a reader
	assert_status 0
	assert_eq "$output" "payload"
}

@test "cp: errors, and links in the container never lead out of it" {
	dir=$BATS_TEST_TMPDIR/host outside=$BATS_TEST_TMPDIR/outside
	mkdir -p "$dir" "$outside"
	echo "host secret" >"$outside/secret"
	chmod -R a+rwX "$outside"
	echo payload >"$dir/in"
	e run -d --name trap busybox sh -c "ln -s $outside /abs; ln -s ../../../../../../../..$outside /rel; ln -s /etc/passwd /pw; sleep 1000" >/dev/null
	wait_until 5 e exec trap test -L /pw
	check_escapes() {
		local target
		for target in /abs/pwned /rel/pwned; do
			run --separate-stderr e cp "$dir/in" "trap:$target"
			assert_status 125
			assert_eq "$stderr" "berth: cannot copy to \"$target\" on container trap: its directory \"${target%/pwned}\" does not exist"
		done
		run --separate-stderr e cp trap:/abs/secret "$dir/got"
		assert_status 125
		assert_eq "$stderr" "berth: \"/abs/secret\" could not be found on container trap: no such file or directory"
		assert_eq "$(ls "$outside")" "secret" "the host directory"
		[[ ! -e $dir/got ]] || fail "a host file was read through a link"
		# A link is copied as a link; -L copies what it points to, inside the container.
		rm -f "$dir/pw"
		e cp trap:/pw "$dir/pw"
		assert_eq "$(readlink "$dir/pw")" "/etc/passwd"
		e cp -L trap:/pw "$dir/pwfile"
		assert_eq "$(head -c 5 "$dir/pwfile")" "root:"
	}
	check_escapes
	e stop -t 0 trap >/dev/null
	check_escapes
	run --separate-stderr e cp nosuch:/x "$dir/x"
	assert_status 125
	assert_eq "$stderr" 'berth: no container with name or ID "nosuch" found'
	run --separate-stderr e cp trap:/nope "$dir/x"
	assert_status 125
	assert_eq "$stderr" 'berth: "/nope" could not be found on container trap: no such file or directory'
	run --separate-stderr e cp "$dir/in" trap:/missing/dir/x
	assert_status 125
	assert_eq "$stderr" 'berth: cannot copy to "/missing/dir/x" on container trap: its directory "/missing/dir" does not exist'
	run --separate-stderr e cp "$dir/missing" trap:/x
	assert_status 125
	assert_eq "$stderr" "berth: \"$dir/missing\" could not be found on the host: no such file or directory"
	run --separate-stderr e cp "$dir/in" "$dir/other"
	assert_status 125
	assert_eq "$stderr" "berth: one of SRC and DEST must be CONTAINER:PATH"
	run --separate-stderr e cp trap:/a trap:/b
	assert_status 125
	assert_eq "$stderr" "berth: copying between containers is not supported: copy to the host first"
}

@test "commit: the container's changes (files, owners, deletions, opaque directories) as a new image; -c, -m, -a" {
	e run --name first busybox sh -c 'mkdir /data; echo 1 >/data/a; echo 2 >/data/b; chown 1000:1000 /data/a; echo changed >/etc/motd; rm /etc/group' >/dev/null
	run --separate-stderr e commit first img1
	assert_status 0
	[[ $output =~ ^[0-9a-f]{64}$ ]] || fail "not an image id: $output"
	id1=$output
	run e images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
	assert_contains "$output" "img1:latest ${id1:0:12}"
	run e run --rm img1 sh -c 'cat /etc/motd; ls /data; stat -c %u:%g /data/a; test -e /etc/group || echo gone'
	assert_status 0
	assert_eq "$output" $'changed\na\nb\n1000:1000\ngone'
	# A directory removed and made again hides what the image had in it.
	e run --name second img1 sh -c 'rm -rf /data /home; mkdir /data /home; echo 3 >/data/c; touch /home/new' >/dev/null
	run e commit -m "second step" -a "Ann Author <ann@example.com>" -c 'CMD ["cat", "/data/c"]' -c 'ENV FOO=bar' second img2:v2
	assert_status 0
	run e run --rm img2:v2
	assert_eq "$output" "3"
	run e run --rm img2:v2 sh -c 'ls /data /home; echo $FOO'
	assert_eq "$output" $'/data:\nc\n\n/home:\nnew\nbar'
	run e image inspect --format '{{json .History}}' img2:v2
	assert_eq "$(jq -r '.[-1].comment, .[-1].author, length' <<<"$output")" $'second step\nAnn Author <ann@example.com>\n3'
	run e image inspect --format '{{json .RootFS.Layers}}' img2:v2
	assert_eq "$(jq length <<<"$output")" 3
	# Without a name: an image without one.
	id3=$(e commit second)
	run e images --format '{{.Repository}} {{.ID}}'
	assert_contains "$output" "<none> ${id3:0:12}"
	run --separate-stderr e commit nosuch img
	assert_status 125
	assert_eq "$stderr" 'berth: no container with name or ID "nosuch" found'
	run --separate-stderr e commit -c 'FROM scratch' second img3
	assert_status 125
	assert_contains "$stderr" 'unsupported instruction FROM'
	run --separate-stderr e commit second 'Bad:Name'
	assert_status 125
	assert_contains "$stderr" 'invalid image name "Bad:Name"'
}

@test "export: the container's file system as a tar, stopped or running; never to a terminal" {
	dir=$BATS_TEST_TMPDIR/host
	mkdir -p "$dir"
	e run --name ex busybox sh -c 'echo hi >/exported; chown 1000:1000 /exported; rm /etc/group' >/dev/null
	e export ex >"$dir/ex.tar"
	run tar -tf "$dir/ex.tar"
	assert_contains "$output" "exported"
	assert_contains "$output" "bin/busybox"
	assert_not_contains "$output" "etc/group"
	assert_eq "$(tar -xOf "$dir/ex.tar" exported)" "hi"
	run tar -tvf "$dir/ex.tar" exported
	assert_contains "$output" "1000/1000"
	run e export -o "$dir/o.tar" ex
	assert_status 0
	assert_eq "$output" ""
	cmp "$dir/ex.tar" "$dir/o.tar" || fail "-o wrote another archive than standard output"
	# Running: its changes so far, not its mounts.
	e run -d --name live busybox sleep 1000 >/dev/null
	e exec live sh -c 'echo now >/made-live'
	e export live >"$dir/live.tar"
	run tar -tf "$dir/live.tar"
	assert_contains "$output" "made-live"
	assert_not_contains "$output" "proc/1/"
	command -v script >/dev/null || skip "script(1) is not installed"
	run script -qec "\"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" export ex" /dev/null
	assert_status 125
	assert_contains "$output" "berth: refusing to write a tar archive to a terminal: use -o FILE or redirect standard output"
	run --separate-stderr e export nosuch
	assert_status 125
	assert_eq "$stderr" 'berth: no container with name or ID "nosuch" found'
}

@test "diff: what a container changed (A added, C changed, D deleted), in path order; --format json; container diff" {
	e run --network none --name changed busybox sh -c 'echo new >/newfile; echo "extra:x:1:1::/:/bin/sh" >>/etc/passwd; rm /etc/group; mkdir -p /a/b; echo f >/a/b/file; mkdir -p /private/inner; chown -R 1000:1000 /private; chmod 700 /private /private/inner' >/dev/null
	# /private: another user's, unreadable to the rootless user outside the store's user namespace.
	expected=$'A /a\nA /a/b\nA /a/b/file\nC /etc\nD /etc/group\nC /etc/passwd\nA /newfile\nA /private\nA /private/inner'
	run --separate-stderr e diff changed
	assert_status 0
	assert_eq "$output" "$expected"
	assert_eq "$stderr" ""
	run e container diff changed
	assert_status 0
	assert_eq "$output" "$expected"
	run --separate-stderr e diff --format json changed
	assert_status 0
	assert_eq "$(jq -c .changed <<<"$output")" '["/etc","/etc/passwd"]'
	assert_eq "$(jq -c .added <<<"$output")" '["/a","/a/b","/a/b/file","/newfile","/private","/private/inner"]'
	assert_eq "$(jq -c .deleted <<<"$output")" '["/etc/group"]'
	assert_eq "$(jq -c 'keys_unsorted' <<<"$output")" '["changed","added","deleted"]'
	# A directory removed and made again (opaque): what the image had in it is deleted.
	e run --network none --name remade busybox sh -c 'rm -rf /home; mkdir -p /home/new' >/dev/null
	run e diff remade
	assert_status 0
	assert_eq "$output" $'C /home\nA /home/new\nD /home/user'
	# Never started: no changes (json: an empty object, as podman's omitempty lists).
	e create --network none --name fresh busybox true >/dev/null
	run e diff fresh
	assert_status 0
	assert_eq "$output" ""
	run e diff --format json fresh
	assert_eq "$output" "{}"
}

@test "diff: a running container's changes so far; unknown container and format are one-line errors" {
	e run -d --network none --name live busybox sleep 1000 >/dev/null
	e exec live sh -c 'echo now >/made-live; mkdir /tmp/sub; rm -rf /var/tmp'
	run --separate-stderr e diff live
	assert_status 0
	assert_eq "$output" $'A /made-live\nC /tmp\nA /tmp/sub\nC /var\nD /var/tmp'
	run --separate-stderr e diff nosuch
	assert_status 125
	assert_eq "$stderr" 'berth: no container with name or ID "nosuch" found'
	run --separate-stderr e diff --format table live
	assert_status 125
	assert_eq "$stderr" "berth: only supported value for '--format' is 'json'"
}

@test "system df and system prune: what is used, what is reclaimable, what prune removes" {
	e run --name done busybox sh -c 'dd if=/dev/zero of=/blob bs=1k count=64 2>/dev/null' >/dev/null
	dangling=$(e commit done)
	e volume create spare >/dev/null
	e run -d --name up -v keep:/data busybox sleep 1000 >/dev/null
	run e system df
	assert_status 0
	[[ ${lines[0]} =~ ^TYPE\ +TOTAL\ +ACTIVE\ +SIZE\ +RECLAIMABLE$ ]] || fail "header: ${lines[0]}"
	[[ ${lines[2]} =~ ^Containers\ +2\ +1\ +65\.[0-9]+\ kB\ +65\.[0-9]+\ kB\ \(100%\)$ ]] || fail "containers: ${lines[2]}"
	run e system df --format '{{.Type}}: {{.Total}} {{.Active}}'
	assert_eq "$output" $'Images: 2 1\nContainers: 2 1\nLocal Volumes: 2 1'
	done_id=$(e inspect --format '{{.Id}}' done)
	run e system prune --volumes
	assert_status 0
	assert_eq "${lines[0]}" "Deleted Containers"
	assert_eq "${lines[1]}" "$done_id"
	assert_eq "${lines[2]}" "Deleted Volumes"
	assert_eq "${lines[3]}" "spare"
	assert_eq "${lines[4]}" "Deleted Images"
	assert_eq "${lines[5]}" "$dangling"
	[[ ${lines[6]} =~ ^Total\ reclaimed\ space:\ [0-9.]+\ [kM]B$ ]] || fail "total: ${lines[6]}"
	run e ps -a --format '{{.Names}}'
	assert_eq "$output" "up"
	run e volume ls -q
	assert_eq "$output" "keep"
	# The image a container uses stays, even with -a.
	run e system prune -a
	assert_eq "$output" "Total reclaimed space: 0 B"
	run e images -q
	assert_eq "${#lines[@]}" 1
	e rm -f up >/dev/null
	run e system prune -a --volumes
	assert_contains "$output" $'Deleted Volumes\nkeep\nDeleted Images'
	run e images -q
	assert_eq "$output" ""
	run e system df --format '{{.Type}} {{.Total}} {{.Size}}'
	assert_eq "$output" $'Images 0 0 B\nContainers 0 0 B\nLocal Volumes 0 0 B'
}
