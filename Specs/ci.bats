#!/usr/bin/env bats
# Specs/ci.md, end to end: berth as a CI job runner — the recipe as
# written, --timeout, a foreground berth told to stop, exit codes, output
# streaming, the copy-on-write workspace and diff; as root and as an
# unprivileged user (BERTH_AS). No test here uses the network.
bats_require_minimum_version 1.5.0
load helpers

setup_file() { engine_setup_file; }
setup() { engine_setup; }
teardown() { engine_teardown; }

# workspace — a checkout-like directory with a job script; prints its path.
workspace() {
	local w=$BATS_TEST_TMPDIR/checkout
	mkdir -p "$w/src"
	printf 'hello\n' >"$w/src/a.txt"
	printf 'keep me\n' >"$w/README"
	cat >"$w/ci.sh" <<-'EOF'
		set -e
		cat src/a.txt
		echo built >out.bin
		echo changed >>README
		rm src/a.txt
		echo "tmp ok" >/tmp/scratch && cat /tmp/scratch
		if touch /etc/sandbox 2>/dev/null; then echo "rootfs writable"; else echo "rootfs read-only"; fi
		ip -o link | awk -F': ' '{ print "link " $2 }'
		exit 7
	EOF
	chmod 0755 "$w" "$w/src"
	chmod 0644 "$w/src/a.txt" "$w/README" "$w/ci.sh"
	echo "$w"
}

# snapshot DIR — paths, sizes, modes and contents' checksums of DIR.
snapshot() { (cd "$1" && find . -printf '%p %s %m %y\n' | sort && find . -type f -exec md5sum {} + | sort); }

# The recipe line from ci.md, with `berth` this test's berth, IMAGE busybox and JOB the job.
recipe() {
	local text
	text=$(awk '/^## The recipe/ { f = 1; next } f && /^    / { sub(/^    /, ""); sub(/\\$/, ""); printf "%s", $0; next } f && NF { exit }' \
		"$BERTH_REPO/Specs/ci.md")
	[[ $text == "berth run "* ]] || fail "no recipe found in ci.md: '$text'"
	text=${text/IMAGE/busybox}
	text=${text/JOB/$1}
	echo "${text/berth /\"\$BERTH\" --root \"\$STATE\" --runroot \"\$RUNROOT\" }"
}

@test "the recipe as written: the job reads and changes the checkout, the host copy stays as it was; read-only root, /tmp, only lo; its exit code" {
	w=$(workspace)
	before=$(snapshot "$w")
	cmd=$(recipe 'sh ci.sh')
	run --separate-stderr bash -c "cd '$w' && $cmd" <"$BERTH_EMPTY"
	assert_status 7
	assert_eq "$(head -1 <<<"$output")" "hello"
	assert_contains "$output" "tmp ok"
	assert_contains "$output" "rootfs read-only"
	assert_eq "$(grep '^link ' <<<"$output")" "link lo"
	assert_eq "$(snapshot "$w")" "$before" "the host's checkout"
	run e ps -a -q
	assert_eq "$output" ""
	[[ -z $(mounts_under "$w") ]] || fail "mounts left under the checkout: $(mounts_under "$w")"
}

@test "exit codes pass through: 0, 1, 42, 128+N for a process killed by signal N, 126 and 127; berth's own errors are 125" {
	for code in 0 1 42; do
		run e run --rm --network none busybox sh -c "exit $code"
		assert_status "$code"
	done
	# Killed by a signal: the shell reports 128+N, as the job's exit code.
	run e run --rm --network none busybox sh -c 'sh -c "kill -KILL \$\$"; exit $?'
	assert_status 137
	run -126 e run --rm --network none busybox /etc/passwd
	run -127 e run --rm --network none busybox no-such-command
	run --separate-stderr e run --rm --network none --no-such-flag busybox true
	assert_status 125
	run e ps -a -q
	assert_eq "$output" ""
}

@test "--timeout: the stop signal at the deadline, SIGKILL after --stop-timeout; the run exits 124 and says so; inspect keeps the job's code" {
	# A job that handles SIGTERM: it ends itself, with its own code.
	run --separate-stderr e run --name polite --network none --timeout 1 busybox sh -c 'trap "echo got TERM; exit 3" TERM; while :; do sleep 0.1; done'
	assert_status 124
	assert_contains "$output" "got TERM"
	assert_eq "${#stderr_lines[@]}" 1 "stderr lines"
	assert_eq "$stderr" "berth: container polite exceeded --timeout 1s: stopped (its exit code: 3)"
	assert_eq "$(e inspect --format '{{.State.ExitCode}}|{{.State.Error}}|{{.Config.Timeout}}' polite)" "3|exceeded --timeout 1s: stopped|1"
	# A job that ignores it: SIGKILL after --stop-timeout.
	run --separate-stderr e run --rm --network none --timeout 1 --stop-timeout 1 busybox sh -c 'trap "" TERM; sleep 600'
	assert_status 124
	assert_fails_with "exceeded --timeout 1s: stopped (its exit code: 137)"
	# Within its time a job ends as usual.
	run e run --rm --network none --timeout 30 busybox sh -c 'exit 5'
	assert_status 5
	# Detached, the monitor keeps the deadline.
	e run -d --name detached --network none --timeout 1 --stop-timeout 1 busybox sh -c 'trap "" TERM; sleep 600' >/dev/null
	run e wait detached
	assert_eq "$output" "137"
	assert_eq "$(e inspect --format '{{.State.Error}}' detached)" "exceeded --timeout 1s: stopped"
	run --separate-stderr e run --rm --timeout -3 busybox true
	assert_status 125
	assert_fails_with "--timeout -3"
}

@test "a foreground berth told to stop passes the signal on, then SIGKILLs after --stop-timeout; nothing is left" {
	# A job that exits on SIGTERM: berth exits with its code.
	berth_bg "$BATS_TEST_TMPDIR/a.out" "$BERTH" --root "$STATE" --runroot "$RUNROOT" run --name a --network none busybox \
		sh -c 'trap "echo stopping; exit 0" TERM; echo ready; while :; do sleep 0.1; done'
	a=$BG_PID
	wait_until 10 file_has "$BATS_TEST_TMPDIR/a.out" ready || fail "job a did not start: $(cat "$BATS_TEST_TMPDIR/a.out")"
	kill -TERM "$a"
	wait "$a" && rc=0 || rc=$?
	assert_eq "$rc" 0 "berth's exit code after the job handled SIGTERM"
	assert_contains "$(cat "$BATS_TEST_TMPDIR/a.out")" "stopping"
	# A job that ignores SIGTERM: SIGKILL after --stop-timeout, berth exits 137.
	berth_bg "$BATS_TEST_TMPDIR/b.out" "$BERTH" --root "$STATE" --runroot "$RUNROOT" run --rm --name b --network none --stop-timeout 1 busybox \
		sh -c 'trap "" TERM; echo ready; while :; do sleep 0.1; done'
	b=$BG_PID
	wait_until 10 file_has "$BATS_TEST_TMPDIR/b.out" ready || fail "job b did not start: $(cat "$BATS_TEST_TMPDIR/b.out")"
	pid=$(e inspect --format '{{.State.Pid}}' b)
	kill -TERM "$b"
	wait "$b" && rc=0 || rc=$?
	assert_eq "$rc" 137 "berth's exit code after SIGKILL"
	pid_dead "$pid" || fail "the job's process $pid outlived berth"
	run e ps -a --format '{{.Names}}'
	assert_eq "$output" "a"
}

@test "output streams while the job runs, stdout and stderr in the order written" {
	# Lines arrive before the job ends.
	berth_bg "$BATS_TEST_TMPDIR/s.out" "$BERTH" --root "$STATE" --runroot "$RUNROOT" run --rm --name s --network none busybox \
		sh -c 'echo first; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo second'
	wait_until 10 file_has "$BATS_TEST_TMPDIR/s.out" first || fail "no output while the job runs"
	assert_eq "$(e inspect --format '{{.State.Status}}' s)" "running"
	[[ $(cat "$BATS_TEST_TMPDIR/s.out") != *second* ]] || fail "second before the job was told"
	e exec s touch /tmp/go
	wait "$BG_PID" || fail "the job failed: $(cat "$BATS_TEST_TMPDIR/s.out")"
	assert_eq "$(cat "$BATS_TEST_TMPDIR/s.out")" $'first\nsecond'
	# Interleaved writes to both streams, captured on one descriptor, keep their order.
	# (berth itself, not the e helper, which keeps the two streams apart).
	"$BERTH" --root "$STATE" --runroot "$RUNROOT" run --rm --network none busybox \
		sh -c 'for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done' <"$BERTH_EMPTY" >"$BATS_TEST_TMPDIR/both" 2>&1 3>&- ||
		fail "the job failed: $(cat "$BATS_TEST_TMPDIR/both")"
	assert_eq "$(cat "$BATS_TEST_TMPDIR/both")" "$(for i in 1 2 3 4 5; do echo "out$i"; echo "err$i"; done)"
}

@test "keep what a job changed: without --rm, diff lists what it added, changed and deleted; cp copies results out" {
	w=$(workspace)
	e run --name job --network none -v "$w":/work:O -w /work busybox sh -c 'echo built >/result.txt; echo more >>/etc/motd; rm /etc/group; mkdir -p /out && cp /work/README /out/' >/dev/null
	run e diff job
	assert_status 0
	# /work is the mount point berth made; the checkout under it was an
	# overlay of its own: nothing in it is part of the container's changes.
	assert_eq "$output" "$(printf '%s\n' 'C /etc' 'D /etc/group' 'A /etc/motd' 'A /out' 'A /out/README' 'A /result.txt' 'A /work')"
	e cp job:/result.txt "$BATS_TEST_TMPDIR/result.txt"
	assert_eq "$(cat "$BATS_TEST_TMPDIR/result.txt")" "built"
	e rm job >/dev/null
}

