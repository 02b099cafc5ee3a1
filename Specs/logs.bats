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

# ------------------------------------------------------------- log drivers

@test "--log-driver none: no log file; a foreground run still prints the output; logs refuses" {
	run --separate-stderr e run --name n --log-driver none busybox sh -c 'echo out; echo err >&2'
	assert_status 0
	assert_eq "$output" "out"
	assert_eq "$stderr" "err"
	run e inspect --format '{{.HostConfig.LogConfig.Type}}|{{.LogPath}}|{{.HostConfig.LogConfig.Path}}' n
	assert_eq "$output" "none||"
	run --separate-stderr e logs n
	assert_status 125
	assert_fails_with "this container is using the 'none' log driver, cannot read logs"
	# Detached: the monitor drains the output and keeps none of it.
	id=$(e run -d --name nd --log-driver none busybox sh -c 'echo hidden; echo hidden-err >&2')
	run e wait nd
	assert_eq "$output" "0"
	assert_eq "$(find "$STATE/containers" -name 'ctr.log*' | wc -l)" 0
	[[ -d $STATE/containers/$id ]] || fail "no container directory for $id"
	run --separate-stderr e logs -f nd
	assert_status 125
	assert_fails_with "this container is using the 'none' log driver, cannot read logs"
}

@test "--log-driver passthrough: the container writes to berth's own stdout and stderr, under run -d too" {
	run --separate-stderr e run --name p --log-driver passthrough busybox sh -c 'echo out; echo err >&2'
	assert_status 0
	assert_eq "$output" "out"
	assert_eq "$stderr" "err"
	assert_eq "$(find "$STATE/containers" -name 'ctr.log*' | wc -l)" 0
	run --separate-stderr e logs p
	assert_status 125
	assert_fails_with "this container is using the 'passthrough' log driver, cannot read logs"

	# run -d: the monitor hands the stdout and stderr run -d was given to the
	# container (under systemd: the unit's journal stream), and prints no id
	# there, as podman.
	out="$BATS_TEST_TMPDIR/detached.out"
	err="$BATS_TEST_TMPDIR/detached.err"
	timeout -k 5 "$BERTH_TIMEOUT" "$BERTH" --root "$STATE" --runroot "$RUNROOT" run -d --name pd --log-driver passthrough busybox \
		sh -c 'echo detached-out; echo detached-err >&2; sleep 0.3; echo later' <"$BERTH_EMPTY" >"$out" 2>"$err" 3>&- ||
		fail "run -d failed: $(cat "$err")"
	run e wait pd
	assert_eq "$output" "0"
	wait_until 5 file_has "$out" later
	assert_eq "$(cat "$out")" $'detached-out\nlater'
	assert_eq "$(cat "$err")" "detached-err"
	# start: the same, with start's stdio.
	: >"$out"
	timeout -k 5 "$BERTH_TIMEOUT" "$BERTH" --root "$STATE" --runroot "$RUNROOT" start pd <"$BERTH_EMPTY" >"$out" 2>"$err" 3>&-
	e wait pd >/dev/null
	wait_until 5 file_has "$out" later
	# (start prints the name there too, while the container writes.)
	assert_eq "$(sort "$out")" $'detached-out\nlater\npd'

	# With -t the monitor copies the terminal's output to that stdout.
	timeout -k 5 "$BERTH_TIMEOUT" "$BERTH" --root "$STATE" --runroot "$RUNROOT" run -d -t --name pt --log-driver passthrough busybox \
		echo on-a-tty <"$BERTH_EMPTY" >"$out" 2>"$err" 3>&-
	e wait pt >/dev/null
	wait_until 5 file_has "$out" on-a-tty
	assert_eq "$(cat "$out")" $'on-a-tty\r'
	assert_eq "$(find "$STATE/containers" -name 'ctr.log*' | wc -l)" 0

	# Its output never passes the monitor: nothing to attach to.
	timeout -k 5 "$BERTH_TIMEOUT" "$BERTH" --root "$STATE" --runroot "$RUNROOT" run -d --name pa --log-driver passthrough busybox \
		sleep 30 <"$BERTH_EMPTY" >"$out" 2>"$err" 3>&-
	run --separate-stderr e attach pa
	assert_status 125
	assert_fails_with "this container is using the 'passthrough' log driver, cannot attach"
	e rm -f pa >/dev/null
}

@test "--log-driver passthrough is refused on a terminal; passthrough-tty is not" {
	command -v script >/dev/null || skip "needs script(1) for a terminal"
	cmd="$BERTH --root $STATE --runroot $RUNROOT"
	run script -qec "$cmd run --name x --log-driver passthrough busybox echo no" "$BATS_TEST_TMPDIR/typescript"
	assert_status 125
	assert_contains "$output" "the '--log-driver passthrough' option cannot be used on a TTY: if you really want it, use '--log-driver passthrough-tty'"
	run e ps -a --format '{{.Names}}'
	assert_eq "$output" ""
	run script -qec "$cmd run --rm --log-driver passthrough-tty busybox echo via-tty" "$BATS_TEST_TMPDIR/typescript"
	assert_status 0
	assert_contains "$output" "via-tty"
}

# fake_journal — a stand-in for journald, which this host may lack: a python3
# server on a unix datagram socket at $JOURNAL (berth's BERTH_JOURNAL_SOCKET)
# that decodes each entry of the native protocol (a datagram, or a memfd
# passed alone) and appends it to $JOURNAL_ENTRIES as a line of `journalctl
# --output=json`, with __CURSOR, __REALTIME_TIMESTAMP, _UID (from
# SCM_CREDENTIALS) and, for the test, _TEST_VIA (datagram|memfd) and
# _TEST_SEALS; and a journalctl in $FAKE_BIN that prints the entries
# matching its FIELD=VALUE arguments, after --after-cursor, and with --follow
# goes on until killed.
fake_journal() {
	JOURNAL="$BATS_TEST_TMPDIR/journal.sock"
	JOURNAL_ENTRIES="$BATS_TEST_TMPDIR/journal.json"
	FAKE_BIN="$BATS_TEST_TMPDIR/bin"
	mkdir -p "$FAKE_BIN"
	: >"$JOURNAL_ENTRIES"
	cat >"$BATS_TEST_TMPDIR/journald.py" <<-'EOF'
		import array, fcntl, json, os, socket, struct, sys, time
		path, out = sys.argv[1], sys.argv[2]
		s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
		s.bind(path)
		n = 0
		while True:
		    data, anc, _, _ = s.recvmsg(1 << 22, socket.CMSG_SPACE(16) + socket.CMSG_SPACE(12))
		    via, seals, uid = "datagram", None, None
		    for level, kind, payload in anc:
		        if kind == socket.SCM_RIGHTS:
		            fds = array.array("i")
		            fds.frombytes(payload[: len(payload) - len(payload) % 4])
		            seals = fcntl.fcntl(fds[0], fcntl.F_GET_SEALS)
		            data, via = os.pread(fds[0], os.fstat(fds[0]).st_size, 0), "memfd"
		            for fd in fds:
		                os.close(fd)
		        elif kind == socket.SCM_CREDENTIALS:
		            uid = struct.unpack("iII", payload[:12])[1]
		    if not data:
		        continue
		    fields, i = {}, 0
		    while i < len(data):
		        eq, nl = data.find(b"=", i), data.find(b"\n", i)
		        if eq != -1 and eq < nl:
		            key, value, i = data[i:eq], data[eq + 1 : nl], nl + 1
		        else:
		            size = struct.unpack("<Q", data[nl + 1 : nl + 9])[0]
		            key, value = data[i:nl], data[nl + 9 : nl + 9 + size]
		            assert data[nl + 9 + size : nl + 10 + size] == b"\n"
		            i = nl + 10 + size
		        try:
		            text = value.decode()
		            fields[key.decode()] = text if text.isprintable() else list(value)
		        except UnicodeDecodeError:
		            fields[key.decode()] = list(value)
		    n += 1
		    fields.update(__CURSOR="c%d" % n, __REALTIME_TIMESTAMP=str(time.time_ns() // 1000), _UID=str(uid), _TEST_VIA=via)
		    if seals is not None:
		        fields["_TEST_SEALS"] = str(seals)
		    with open(out, "a") as f:
		        f.write(json.dumps(fields) + "\n")
	EOF
	cat >"$FAKE_BIN/journalctl" <<-EOF
		#!/usr/bin/python3
		import json, sys, time
		entries = "$JOURNAL_ENTRIES"
		with open(entries + ".calls", "a") as f:
		    f.write(" ".join(sys.argv[1:]) + "\n")
		after = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--after-cursor=")), None)
		matches = [a.split("=", 1) for a in sys.argv[1:] if not a.startswith("-")]
		seen, position = after is None, 0
		def scan():
		    global seen, position
		    with open(entries) as f:
		        f.seek(position)
		        for line in f:
		            if not line.endswith("\n"):
		                break
		            position += len(line.encode())
		            entry = json.loads(line)
		            if not seen:
		                seen = entry["__CURSOR"] == after
		                continue
		            if all(entry.get(k) == v for k, v in matches):
		                sys.stdout.write(line)
		    sys.stdout.flush()
		scan()
		while "--follow" in sys.argv:
		    time.sleep(0.05)
		    scan()
	EOF
	chmod 755 "$FAKE_BIN/journalctl"
	berth_bg "$BATS_TEST_TMPDIR/journald.out" python3 "$BATS_TEST_TMPDIR/journald.py" "$JOURNAL" "$JOURNAL_ENTRIES"
	JOURNALD_PID=$BG_PID
	wait_until 10 test -S "$JOURNAL" || fail "the fake journal did not start: $(cat "$BATS_TEST_TMPDIR/journald.out")"
	export BERTH_JOURNAL_SOCKET=$JOURNAL
}

# journal_fields FIELD... — for each entry received, its FIELDs joined by |
# (a missing field is "-", a binary one its length as "<N bytes>").
journal_fields() {
	python3 - "$JOURNAL_ENTRIES" "$@" <<-'EOF'
		import json, sys
		for line in open(sys.argv[1]):
		    entry = json.loads(line)
		    values = [entry.get(name, "-") for name in sys.argv[2:]]
		    print("|".join(v if isinstance(v, str) else "<%d bytes>" % len(v) for v in values))
	EOF
}

journal_count_is() { [[ $(wc -l <"$JOURNAL_ENTRIES") == "$1" ]]; }

@test "--log-driver journald: an entry per line to the journal socket, with conmon's fields; logs reads them back" {
	fake_journal
	id=$(e run -d --name j --log-driver journald busybox sh -c \
		'echo out1; sleep 0.1; echo err1 >&2; sleep 0.1; printf "  a  b\n\n"; sleep 0.1; printf "no "; sleep 0.1; printf "newline"')
	run e wait j
	assert_eq "$output" "0"
	wait_until 5 journal_count_is 5 || fail "entries: $(cat "$JOURNAL_ENTRIES")"
	run journal_fields MESSAGE PRIORITY CONTAINER_PARTIAL_MESSAGE
	assert_eq "$output" $'out1|6|-\nerr1|3|-\n  a  b|6|-\n|6|-\nno newline|6|true'
	run journal_fields CONTAINER_ID_FULL CONTAINER_ID CONTAINER_NAME SYSLOG_IDENTIFIER CONTAINER_TAG _UID _TEST_VIA
	uid=$(id -u)
	for line in "${lines[@]}"; do
		assert_eq "$line" "$id|${id:0:12}|j|j|-|$uid|datagram"
	done
	assert_eq "$(find "$STATE/containers" -name 'ctr.log*' | wc -l)" 0
	run e inspect --format '{{.HostConfig.LogConfig.Type}}|{{.LogPath}}' j
	assert_eq "$output" "journald|"

	# logs asks journalctl (the first on PATH) for CONTAINER_ID_FULL and _UID.
	out=$(PATH="$FAKE_BIN:$PATH" e logs j 2>"$BATS_TEST_TMPDIR/stderr"; echo .)
	assert_eq "$out" $'out1\n  a  b\n\nno newline.'
	assert_eq "$(cat "$BATS_TEST_TMPDIR/stderr")" "err1"
	assert_contains "$(cat "$JOURNAL_ENTRIES.calls")" "CONTAINER_ID_FULL=$id _UID=$uid"
	PATH="$FAKE_BIN:$PATH" run e logs --tail 2 j
	assert_eq "$output" $'\nno newline'
	PATH="$FAKE_BIN:$PATH" run --separate-stderr e logs -t j
	[[ ${lines[0]} =~ ^$TIME\ out1$ ]] || fail "-t: ${lines[0]}"
	[[ $stderr =~ ^$TIME\ err1$ ]] || fail "-t stderr: $stderr"
	PATH="$FAKE_BIN:$PATH" run e logs --since 0s j
	assert_eq "$output" ""

	# A foreground run prints the output and logs it; tag= names the entries.
	run --separate-stderr e run --name j2 --log-driver journald --log-opt 'tag={{.Name}}-tag' busybox sh -c 'echo fg; echo fg-err >&2'
	assert_status 0
	assert_eq "$output" "fg"
	assert_eq "$stderr" "fg-err"
	wait_until 5 journal_count_is 7 || fail "entries: $(cat "$JOURNAL_ENTRIES")"
	run journal_fields MESSAGE PRIORITY CONTAINER_NAME CONTAINER_TAG SYSLOG_IDENTIFIER
	assert_contains "$output" "fg|6|j2|j2-tag|j2-tag"
	assert_contains "$output" "fg-err|3|j2|j2-tag|j2-tag"
	run e inspect --format '{{.HostConfig.LogConfig.Tag}}' j2
	assert_eq "$output" "{{.Name}}-tag"
}

@test "--log-driver journald: a line too big for a datagram goes whole through a sealed memfd; longer ones in joined pieces" {
	fake_journal
	# Bigger than any datagram the default send buffer allows.
	big=$(($(cat /proc/sys/net/core/wmem_default) + 50000))
	huge=$((1048576 + 100000))
	e run -d --name big --log-driver journald busybox sh -c \
		"yes x | head -c $((big * 2)) | tr -d '\\n'; echo; echo after; yes y | head -c $((huge * 2)) | tr -d '\\n'; echo" >/dev/null
	e wait big >/dev/null
	wait_until 10 journal_count_is 4 || fail "entries: $(journal_fields MESSAGE _TEST_VIA)"
	run journal_fields MESSAGE _TEST_VIA _TEST_SEALS CONTAINER_PARTIAL_MESSAGE
	# The sealed memfd: F_SEAL_SEAL, SHRINK, GROW and WRITE (15).
	[[ ${lines[0]} == "$(head -c "$big" /dev/zero | tr '\0' x)|memfd|15|-" ]] || fail "entry 1: ${lines[0]:0:40}… $(journal_fields _TEST_VIA _TEST_SEALS | head -1)"
	assert_eq "${lines[1]}" "after|datagram|-|-"
	# A line longer than 1 MiB: a piece of 1 MiB marked partial, then the rest.
	run journal_fields CONTAINER_PARTIAL_MESSAGE _TEST_VIA
	assert_eq "${lines[2]}" "true|memfd"
	assert_eq "${lines[3]}" "-|datagram"
	PATH="$FAKE_BIN:$PATH" run e logs big
	assert_eq "${#lines[@]}" 3
	assert_eq "${#lines[0]}" "$big"
	assert_eq "${lines[1]}" "after"
	assert_eq "${#lines[2]}" "$huge"
	[[ ${lines[2]} =~ ^y+$ ]] || fail "the pieces were not joined"
}

@test "--log-driver journald -f: follows the journal until the container exits" {
	fake_journal
	ctl="$BATS_TEST_TMPDIR/ctl"
	mkdir -p "$ctl"
	chmod 777 "$ctl"
	e run -d --name jf --log-driver journald -v "$ctl:/ctl" busybox sh -c \
		'echo first; while [ ! -e /ctl/go ]; do sleep 0.05; done; echo second; echo err-second >&2' >/dev/null
	wait_until 5 journal_count_is 1
	PATH="$FAKE_BIN:$PATH" berth_bg "$BATS_TEST_TMPDIR/follow.out" "$BERTH" --root "$STATE" --runroot "$RUNROOT" logs -f jf
	follower=$BG_PID
	wait_until 10 file_has "$BATS_TEST_TMPDIR/follow.out" first || fail "logs -f printed nothing: $(cat "$BATS_TEST_TMPDIR/follow.out")"
	sleep 0.3
	pid_alive "$follower" || fail "logs -f returned while the container runs"
	: >"$ctl/go"
	berth_wait_bg "$follower" 10 || fail "logs -f did not return after the container exited (status $?)"
	assert_eq "$(grep -v err "$BATS_TEST_TMPDIR/follow.out")" $'first\nsecond'
	assert_eq "$(grep err "$BATS_TEST_TMPDIR/follow.out")" "err-second"
	grep -q -- "--follow --lines=all --after-cursor=c1 CONTAINER_ID_FULL=" "$JOURNAL_ENTRIES.calls" || fail "calls: $(cat "$JOURNAL_ENTRIES.calls")"
}

@test "--log-driver journald without a journal: create and start fail with one line, nothing left" {
	missing="$BATS_TEST_TMPDIR/missing.sock"
	run --separate-stderr env BERTH_JOURNAL_SOCKET="$missing" "$BERTH" --root "$STATE" --runroot "$RUNROOT" \
		run --name nj --log-driver journald busybox true
	assert_status 125
	assert_fails_with "--log-driver journald: the systemd journal is not reachable at $missing: no such file or directory"
	run e ps -a --format '{{.Names}}'
	assert_eq "$output" ""
	# Created while the journal ran, started once it is gone.
	fake_journal
	e create --name later --log-driver journald busybox echo hi >/dev/null
	berth_stop_pid "$JOURNALD_PID"
	run --separate-stderr e start later
	assert_status 125
	assert_fails_with "container later logs to journald: the systemd journal is not reachable at $JOURNAL: connection refused"
	run e inspect --format '{{.State.Status}}' later
	assert_eq "$output" "created"
	run --separate-stderr e start -a later
	assert_status 125
	assert_fails_with "container later logs to journald: the systemd journal is not reachable at $JOURNAL: connection refused"
	# create checks too.
	run --separate-stderr e create --log-driver journald busybox true
	assert_status 125
	assert_fails_with "--log-driver journald: the systemd journal is not reachable at $JOURNAL: connection refused"
}

@test "log driver errors: unknown driver, options that do not fit the driver" {
	run --separate-stderr e run --log-driver syslog busybox true
	assert_status 125
	assert_fails_with '--log-driver "syslog": expected k8s-file, journald, passthrough, passthrough-tty or none'
	run --separate-stderr e create --log-opt tag=web busybox true
	assert_status 125
	assert_fails_with '--log-opt "tag=web": log tags can only be used with the journald log driver (the driver is k8s-file)'
	run --separate-stderr e create --log-driver none --log-opt max-size=1k busybox true
	assert_status 125
	assert_fails_with '--log-opt "max-size=1k": only the k8s-file log driver has a size (the driver is none)'
	run --separate-stderr e create --log-driver=json-file --log-opt max-size=1k busybox true
	assert_status 0
	run e ps -a --format '{{.Names}}'
	assert_eq "${#lines[@]}" 1
}
