#!/usr/bin/env bats
# Specs/logs.md, end to end: what containers write, kept in their k8s-file
# log and shown by `berth logs`, as root and as an unprivileged user
# (BERTH_AS). Each test has its own store and runtime state (engine_setup).
bats_require_minimum_version 1.5.0
load helpers

setup_file() { engine_setup_file; }
setup() { engine_setup; }
teardown() { engine_teardown; }

# A log record: <RFC 3339 UTC time, 9 digits> <stream> <F|P> <content>
RECORD='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z (stdout|stderr) (F|P) '
TIME='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{9}Z'

@test "logs: a detached container's stdout and stderr, kept apart, in a k8s-file log at LogPath" {
	run e run -d --name l busybox sh -c 'echo out1; echo err1 >&2; echo out2; echo "  spaced  out  "'
	assert_status 0
	id=$output
	run e wait l
	assert_eq "$output" "0"
	run --separate-stderr e logs l
	assert_status 0
	assert_eq "$output" $'out1\nout2\n  spaced  out  '
	assert_eq "$stderr" "err1"

	run e inspect --format '{{.LogPath}} {{.HostConfig.LogConfig.Type}}' l
	assert_eq "$output" "$STATE/containers/$id/ctr.log k8s-file"
	log="$STATE/containers/$id/ctr.log"
	[[ -f $log ]] || fail "no log at $log"
	mapfile -t records <"$log"
	assert_eq "${#records[@]}" 4 "records"
	for record in "${records[@]}"; do
		[[ $record =~ $RECORD ]] || fail "not a k8s-file record: '$record'"
	done
	[[ ${records[0]} == *" stdout F out1" ]] || fail "record: ${records[0]}"
	grep -qxE "$TIME stderr F err1" "$log" || fail "no stderr record: $(cat "$log")"
	grep -qxE "$TIME stdout F   spaced  out  " "$log" || fail "content not kept byte for byte: $(cat "$log")"
	# The log file is the container's: nobody else may read it.
	assert_eq "$(stat -c %a "$log")" "600"
}

@test "logs: a line without its newline is logged as P records and shown as written" {
	e run -d --name p busybox sh -c 'printf "abc"; sleep 0.3; printf "def\n"; sleep 0.3; printf "no newline"' >/dev/null
	e wait p >/dev/null
	log=$(e inspect --format '{{.LogPath}}' p)
	grep -qxE "$TIME stdout P abc" "$log" || fail "no P record: $(cat "$log")"
	grep -qxE "$TIME stdout F def" "$log" || fail "no F record: $(cat "$log")"
	grep -qxE "$TIME stdout P no newline" "$log" || fail "no last P record: $(cat "$log")"
	# The pieces are joined; the last line stays without a newline.
	out=$(e logs p; echo .)
	assert_eq "$out" $'abcdef\nno newline.'
	# With -t the joined line carries the time of its first piece.
	run e logs -t p
	first=$(grep -oE "^$TIME stdout P abc" "$log" | cut -d' ' -f1)
	assert_eq "${lines[0]}" "$first abcdef"
}

@test "logs: a foreground run keeps a log too; run --rm keeps none" {
	run --separate-stderr e run --name fg busybox sh -c 'echo fg-out; echo fg-err >&2; exit 2'
	assert_status 2
	assert_eq "$output" "fg-out"
	assert_eq "$stderr" "fg-err"
	run --separate-stderr e logs fg
	assert_eq "$output" "fg-out"
	assert_eq "$stderr" "fg-err"
	# start -a appends to the same log.
	run e start -a fg
	assert_status 2
	run --separate-stderr e logs fg
	assert_eq "$output" $'fg-out\nfg-out'
	assert_eq "$stderr" $'fg-err\nfg-err'

	run e run --rm --name gone busybox echo shown
	assert_status 0
	assert_eq "$output" "shown"
	run --separate-stderr e logs gone
	assert_status 125
	assert_eq "$(find "$STATE/containers" -name 'ctr.log*' | wc -l)" 1
	# A created container that never ran has an empty log.
	e create --name idle busybox true >/dev/null
	run e logs idle
	assert_status 0
	assert_eq "$output" ""
}

@test "logs --tail N: only the last N lines" {
	e run -d --name t busybox sh -c 'for i in 1 2 3 4 5; do echo line$i; done' >/dev/null
	e wait t >/dev/null
	run e logs --tail 2 t
	assert_eq "$output" $'line4\nline5'
	run e logs --tail 0 t
	assert_status 0
	assert_eq "$output" ""
	run e logs --tail 100 t
	assert_eq "${#lines[@]}" 5
	run e logs --tail=-1 t
	assert_eq "${#lines[@]}" 5
}

@test "logs -t: each line after its RFC 3339 time with nanoseconds (stderr too)" {
	e run -d --name ts busybox sh -c 'echo one; echo two >&2' >/dev/null
	e wait ts >/dev/null
	run --separate-stderr e logs -t ts
	[[ $output =~ ^($TIME)\ one$ ]] || fail "stdout: $output"
	[[ $stderr =~ ^($TIME)\ two$ ]] || fail "stderr: $stderr"
	# The times are the records' times.
	log=$(e inspect --format '{{.LogPath}}' ts)
	assert_eq "${output%% *}" "$(grep ' stdout F one$' "$log" | cut -d' ' -f1)"
}

@test "logs --since/--until: RFC 3339 times, Unix seconds, durations" {
	e run -d --name s busybox sh -c 'echo early; sleep 1.5; echo late' >/dev/null
	e wait s >/dev/null
	run e logs -t s
	early=${lines[0]%% *}
	late=${lines[1]%% *}
	assert_eq "${lines[1]#* }" "late"
	# RFC 3339: --since and --until include a line at exactly that time.
	run e logs --since "$late" s
	assert_eq "$output" "late"
	run e logs --until "$early" s
	assert_eq "$output" "early"
	run e logs --since "$early" --until "$late" s
	assert_eq "$output" $'early\nlate'
	# Unix seconds, and an RFC 3339 time in another zone.
	seconds=$(date -u -d "$late" +%s)
	run e logs --since "$seconds" s
	assert_eq "$output" "late"
	run e logs --since "$(date -u -d "@$((seconds + 3600))" +%Y-%m-%dT%H:%M:%S)+01:00" s
	assert_eq "$output" "late"
	run e logs --since "$(date -u -d "@$((seconds + 3600))" +%Y-%m-%dT%H:%M:%S)Z" s
	assert_eq "$output" ""
	# Durations count back from now.
	run e logs --since 1h s
	assert_eq "$output" $'early\nlate'
	run e logs --since 0s s
	assert_eq "$output" ""
	run e logs --until 1h s
	assert_eq "$output" ""
	run e logs --until 2099-01-01 s
	assert_eq "$output" $'early\nlate'
	run e logs --tail 1 --since 1h s
	assert_eq "$output" "late"
}

@test "logs -f: prints lines as they are written and returns when the container exits" {
	ctl="$BATS_TEST_TMPDIR/ctl"
	mkdir -p "$ctl"
	chmod 777 "$ctl"
	e run -d --name f -v "$ctl:/ctl" busybox sh -c \
		'echo first; echo err-first >&2; while [ ! -e /ctl/go ]; do sleep 0.05; done; echo second; echo err-second >&2' >/dev/null
	berth_bg "$BATS_TEST_TMPDIR/follow.out" "$BERTH" --root "$STATE" --runroot "$RUNROOT" logs -f f
	follower=$BG_PID
	wait_until 10 file_has "$BATS_TEST_TMPDIR/follow.out" first || fail "logs -f printed nothing: $(cat "$BATS_TEST_TMPDIR/follow.out")"
	wait_until 10 file_has "$BATS_TEST_TMPDIR/follow.out" err-first
	sleep 0.3
	pid_alive "$follower" || fail "logs -f returned while the container runs"
	: >"$ctl/go"
	berth_wait_bg "$follower" 10 || fail "logs -f did not return after the container exited (status $?)"
	assert_eq "$(grep -v err "$BATS_TEST_TMPDIR/follow.out")" $'first\nsecond'
	assert_eq "$(grep err "$BATS_TEST_TMPDIR/follow.out")" $'err-first\nerr-second'
	# An exited container: everything, at once.
	run --separate-stderr timeout 5 "$BERTH" --root "$STATE" --runroot "$RUNROOT" logs -f f
	assert_status 0
	assert_eq "$output" $'first\nsecond'
	assert_eq "$stderr" $'err-first\nerr-second'
}

@test "logs -f: a partial line is shown at once, its rest when it comes" {
	ctl="$BATS_TEST_TMPDIR/ctl"
	mkdir -p "$ctl"
	chmod 777 "$ctl"
	e run -d --name pf -v "$ctl:/ctl" busybox sh -c \
		'printf "progress: "; while [ ! -e /ctl/go ]; do sleep 0.05; done; echo done' >/dev/null
	berth_bg "$BATS_TEST_TMPDIR/follow.out" "$BERTH" --root "$STATE" --runroot "$RUNROOT" logs -f pf
	follower=$BG_PID
	wait_until 10 file_has "$BATS_TEST_TMPDIR/follow.out" "progress: " || fail "the partial line was not shown"
	: >"$ctl/go"
	berth_wait_bg "$follower" 10 || fail "logs -f did not return"
	assert_eq "$(cat "$BATS_TEST_TMPDIR/follow.out")" "progress: done"
}

@test "--log-opt max-size rotates the log into ctr.log.1; logs reads both, -f follows across rotations" {
	e run -d --name r --log-opt max-size=200 busybox sh -c 'for i in $(seq 1 20); do echo line-$i; done' >/dev/null
	e wait r >/dev/null
	log=$(e inspect --format '{{.LogPath}}' r)
	run e inspect --format '{{.HostConfig.LogConfig.Size}}' r
	assert_eq "$output" "200"
	[[ -f $log.1 ]] || fail "no rotated file"
	[[ ! -e $log.2 ]] || fail "more than one rotated file"
	for file in "$log" "$log.1"; do
		size=$(stat -c %s "$file")
		((size <= 200)) || fail "$file has $size bytes"
	done
	# Records are 47 or 48 bytes: four to a file, the last eight lines kept.
	run e logs r
	assert_eq "$output" "$(printf 'line-%s\n' $(seq 13 20))"
	run e logs --tail 5 r
	assert_eq "$output" "$(printf 'line-%s\n' $(seq 16 20))"

	ctl="$BATS_TEST_TMPDIR/ctl"
	mkdir -p "$ctl"
	chmod 777 "$ctl"
	e run -d --name rf --log-opt max-size=200 -v "$ctl:/ctl" busybox sh -c \
		'while [ ! -e /ctl/go ]; do sleep 0.05; done; for i in $(seq 1 20); do echo line-$i; sleep 0.1; done' >/dev/null
	berth_bg "$BATS_TEST_TMPDIR/follow.out" "$BERTH" --root "$STATE" --runroot "$RUNROOT" logs -f rf
	follower=$BG_PID
	sleep 0.3
	: >"$ctl/go"
	berth_wait_bg "$follower" 20 || fail "logs -f did not return"
	assert_eq "$(cat "$BATS_TEST_TMPDIR/follow.out")" "$(printf 'line-%s\n' $(seq 1 20))"
}

@test "logs errors: unknown container, bad --since/--until, bad --log-opt" {
	run --separate-stderr e logs nosuch
	assert_status 125
	assert_fails_with 'no container with name or ID "nosuch" found'
	e create --name c busybox true >/dev/null
	run --separate-stderr e logs --since yesterday c
	assert_status 125
	assert_fails_with '--since "yesterday": expected an RFC 3339 time, Unix seconds or a duration such as 10m'
	run --separate-stderr e logs --until 2026-13-01 c
	assert_status 125
	assert_fails_with '--until "2026-13-01": expected an RFC 3339 time'
	run --separate-stderr e logs --tail=-2 c
	assert_status 125
	assert_fails_with '--tail -2: expected a number of lines ≥ 0, or -1 for all'
	run --separate-stderr e run --log-opt max-size=lots busybox true
	assert_status 125
	assert_fails_with '--log-opt "max-size=lots": expected a size such as 10m'
	run --separate-stderr e run --log-opt path=/tmp/x busybox true
	assert_status 125
	assert_fails_with '--log-opt "path=/tmp/x": berth knows max-size=SIZE'
}
