#!/usr/bin/env bats
#
# Attack tests: each one performs a known container-escape technique from
# inside a container (or with an image built the way an attacker would build
# it) and asserts that it fails and that the host is unchanged. Specs/security.md
# gives the threat model and maps every test to the attack class and CVE.
#
# Runs as root and rootless (see helpers.bash for the environment contract).
# Every test uses its own bundle, --root and host marker directory under
# $BATS_TEST_TMPDIR. scripts/check-attack-tests runs each test against a
# build with the matching defense removed (scripts/weaken/*.patch) and
# expects it to fail there.
#
# Test names start with a short tag (e.g. "[exe]") that
# scripts/check-attack-tests selects with `bats -f`.

bats_require_minimum_version 1.7.0

load helpers

setup_file() {
	berth_setup_file
}

setup() {
	berth_setup
	B="$BATS_TEST_TMPDIR/bundle"
	HOST="$BATS_TEST_TMPDIR/host" # stands for "anything on the host"
	LOG="$BATS_TEST_TMPDIR/log"
	mkdir -p "$HOST"
}

teardown() {
	local rc=0
	berth_sweep_containers || rc=1
	berth_teardown || rc=1
	berth_sweep_mounts || rc=1
	return $rc
}

# ------------------------------------------------------------------ helpers
# (prefixed sec_ so they never clash with helpers.bash)

# sec_snapshot DIR — every entry under DIR (type, mode, owner, size, link
# target) and the sha256 of every file, for before/after comparisons.
sec_snapshot() {
	(
		cd "$1" || exit 1
		find . -printf '%p %y %m %U:%G %s -> %l\n' | LC_ALL=C sort
		find . -type f -exec sha256sum {} + | LC_ALL=C sort
	)
}

# sec_assert_host_unchanged BEFORE — $HOST is as BEFORE (a sec_snapshot) and
# nothing is mounted on or under it in the host's mount namespace.
sec_assert_host_unchanged() {
	local after mounts
	after=$(sec_snapshot "$HOST")
	[[ "$after" == "$1" ]] || fail "the host marker directory $HOST changed:
--- before
$1
--- after
$after
---
diff: $(diff <(echo "$1") <(echo "$after"))"
	mounts=$(mounts_under "$HOST")
	[[ -z $mounts ]] || fail "mounts appeared on the host under $HOST: $mounts"
}

# sec_rm_dev_mounts DIR — drop every config mount at or under /dev, so the
# rootfs's own /dev is what the container gets.
sec_rm_dev_mounts() {
	cfg "$1" '.mounts |= map(select(.destination != "/dev" and (.destination | startswith("/dev/") | not)))'
}

# sec_put FILE MODE — write stdin to FILE (inside a rootfs) with MODE.
sec_put() {
	cat >"$1" && chmod "$2" "$1"
}

# sec_climb — enough "../" to climb from anywhere in the bundle to /.
sec_climb() {
	local n i s=
	n=$(tr -cd / <<<"$B/rootfs/x/y/z")
	n=${#n}
	for ((i = 0; i < n + 4; i++)); do s+=../; done
	echo "$s"
}

# sec_private_berth — a private copy of the binary under test (so an attack
# that succeeds can only harm the copy); sets BCOPY and BCOPY_SUM.
sec_private_berth() {
	mkdir -p "$BATS_TEST_TMPDIR/private"
	BCOPY="$BATS_TEST_TMPDIR/private/berth"
	cp "$BERTH" "$BCOPY"
	chmod 755 "$BCOPY"
	BCOPY_SUM=$(sha256sum <"$BCOPY")
}

sec_assert_private_berth_intact() {
	local now
	now=$(sha256sum <"$BCOPY")
	[[ $now == "$BCOPY_SUM" ]] || fail "the berth binary $BCOPY was modified from inside the container (sha256 $BCOPY_SUM -> $now): $(head -c 200 "$BCOPY" | tr -cd '[:print:]\n')"
}

# The attacker of the /proc/PID/exe tests (busybox sh, in the container).
# It scans /proc for processes whose comm is "berth" (a runtime process
# that is inside the container's pid namespace), tries to obtain a handle on
# their exe, root, cwd and fds, and, with an exe handle, keeps trying to
# overwrite the binary through /proc/HOLDER/fd/5 (as CVE-2019-5736 did:
# the open fails with ETXTBSY until the last berth process has exited).
# Log lines in /attack.log: "seen PID", "GOT-EXE PID", "GOT-ROOT PID ...",
# "GOT-FD PID ...", "OVERWROTE", "scanned", "done".
SEC_EXE_ATTACKER=$(
	cat <<'SH'
#!/bin/sh
# attack.sh MODE: "scan" scans once; "hold" first turns /etc/passwd into a
# fifo, so a berth exec child that reads it blocks until the attacker is done.
mode=$1
log=/attack.log
say() { echo "$*" >>$log; }
if [ "$mode" = hold ]; then
	mv /etc/passwd /etc/passwd.real && mkfifo -m 644 /etc/passwd || { say "setup failed"; exit 1; }
fi
say ready
holder=
end=$(($(date +%s) + 30))
while [ "$(date +%s)" -lt "$end" ]; do
	found=
	for p in /proc/[0-9]*; do
		n=${p#/proc/}
		[ "$n" = "$$" ] && continue
		case "$(cat "$p/comm" 2>/dev/null)" in berth*) ;; *) continue ;; esac
		found=$n
		say "seen $n"
		# cmp exits 1 when it could read a binary other than our own busybox
		# (a process that has just exec'd into the container is not berth).
		cmp -s "$p/exe" "/proc/$$/exe" 2>/dev/null
		[ $? = 1 ] && say "GOT-EXE $n (read)"
		if [ -z "$holder" ]; then
			sleep 1000 5<"$p/exe" 2>/dev/null &
			h=$!
			sleep 0.2
			cmp -s "/proc/$h/fd/5" "/proc/$$/exe" 2>/dev/null
			if [ $? = 1 ]; then holder=$h; say "GOT-EXE $n (handle in $h)"; else kill $h 2>/dev/null; fi
		fi
		r=$(ls "$p/root/" 2>/dev/null | tr '\n' ' ') && [ -n "$r" ] && say "GOT-ROOT $n: $r"
		f=$(for l in "$p"/fd/*; do readlink "$l"; done 2>/dev/null | tr '\n' ' ') && [ -n "$f" ] && say "GOT-FD $n: $f"
	done
	if [ "$mode" = scan ] || [ -n "$found" ]; then break; fi
	sleep 0.05
done
say scanned
if [ "$mode" = hold ]; then
	cat /etc/passwd.real >/etc/passwd # lets the blocked berth child go on
fi
if [ -n "$holder" ]; then
	end=$(($(date +%s) + 20))
	while [ "$(date +%s)" -lt "$end" ]; do
		if printf '#!/bin/sh\necho pwned by the container\n' 2>/dev/null >"/proc/$holder/fd/5"; then
			say OVERWROTE
			break
		fi
		sleep 0.1
	done
	kill "$holder" 2>/dev/null
fi
say done
SH
)

# ===================================================== (a) /proc/PID/exe

@test "[exe-init] CVE-2019-5736: a process exec'd into a created container cannot open its waiting init's /proc/1/exe and overwrite berth" {
	sec_private_berth
	make_bundle "$B" sleep 1000
	sec_put "$B/rootfs/attack.sh" 755 <<<"$SEC_EXE_ATTACKER"
	ID=$(unique_id)
	# Every berth run of this test is the private copy.
	BERTH=$BCOPY b create --bundle "$B" "$ID" >"$LOG" 2>&1 || fail "create failed: $(cat "$LOG")"
	if [[ $BERTH_AS == rootless ]]; then
		# Rootless berth cannot join a created container (its init is not
		# dumpable, Specs/runtime.md): the attacker has no way in at all.
		BERTH=$BCOPY run --separate-stderr b exec -d "$ID" sh /attack.sh scan
		assert_fails_with "created, not started"
		[[ ! -e "$B/rootfs/attack.log" ]] || fail "the attacker ran: $(cat "$B/rootfs/attack.log")"
		sec_assert_private_berth_intact
		return 0
	fi
	BERTH=$BCOPY b exec -d "$ID" sh /attack.sh scan >"$LOG" 2>&1 || fail "exec -d failed: $(cat "$LOG")"
	wait_until 30 file_has "$B/rootfs/attack.log" scanned || fail "attacker did not finish its scan: $(cat "$B/rootfs/attack.log")"
	# The init now execs sleep: berth's binary is no longer busy, so an
	# attacker holding an exe handle could now overwrite it.
	BERTH=$BCOPY b start "$ID" >"$LOG" 2>&1 || fail "start failed: $(cat "$LOG")"
	wait_until 40 file_has "$B/rootfs/attack.log" "done" || fail "attacker never finished: $(cat "$B/rootfs/attack.log")"
	local log
	log=$(cat "$B/rootfs/attack.log")
	# The attack is real: the attacker saw the waiting init (comm "berth").
	assert_contains "$log" "seen 1" "attack log (the attacker must see berth's init as pid 1)"
	assert_not_contains "$log" GOT-EXE "attack log"
	assert_not_contains "$log" GOT-ROOT "attack log"
	assert_not_contains "$log" GOT-FD "attack log"
	assert_not_contains "$log" OVERWROTE "attack log"
	sec_assert_private_berth_intact
}

# sec_exec_attack [JQ-FILTER] — a container whose process is the attacker
# in "hold" mode (optionally with its config changed by JQ-FILTER), then a
# `berth exec` that the attacker holds before its execve. Leaves the attack
# log in $ATTACK_LOG.
sec_exec_attack() {
	sec_private_berth
	make_bundle "$B" sh -c 'sh /attack.sh hold; exec sleep 1000'
	[[ -z ${1:-} ]] || cfg "$B" "$1"
	sec_put "$B/rootfs/attack.sh" 755 <<<"$SEC_EXE_ATTACKER"
	ID=$(unique_id)
	BERTH=$BCOPY b run -d --bundle "$B" "$ID" >"$LOG" 2>&1 || fail "run -d failed: $(cat "$LOG")"
	wait_until 30 file_has "$B/rootfs/attack.log" ready || fail "attacker not ready: $(cat "$B/rootfs/attack.log")"
	# No HOME in process.env: the exec child reads the container's
	# /etc/passwd (now the attacker's fifo) and waits there, in the
	# container's namespaces, until the attacker has had its go.
	BERTH=$BCOPY run --separate-stderr b exec "$ID" true
	wait_until 40 file_has "$B/rootfs/attack.log" "done" || fail "attacker never finished: $(cat "$B/rootfs/attack.log")"
	[[ $status == 0 ]] || fail "exec failed with status $status: $stderr
attack log: $(cat "$B/rootfs/attack.log")"
	ATTACK_LOG=$(cat "$B/rootfs/attack.log")
}

@test "[exe-exec] CVE-2019-5736: the child of berth exec, held before execve by a fifo at /etc/passwd, cannot be opened through /proc/PID/exe" {
	sec_exec_attack
	assert_contains "$ATTACK_LOG" "seen " "attack log (the attacker must see the berth exec child)"
	assert_not_contains "$ATTACK_LOG" GOT-EXE "attack log"
	assert_not_contains "$ATTACK_LOG" GOT-ROOT "attack log"
	assert_not_contains "$ATTACK_LOG" GOT-FD "attack log"
	assert_not_contains "$ATTACK_LOG" OVERWROTE "attack log"
	sec_assert_private_berth_intact
}

@test "[exe-ptrace] CVE-2019-5736: with CAP_SYS_PTRACE granted, berth exec runs from a sealed copy the container cannot overwrite" {
	[[ $BERTH_AS == root ]] || skip "rootless containers have a user namespace of their own, in which CAP_SYS_PTRACE cannot reach berth"
	sec_exec_attack '.process.capabilities |= with_entries(.value += ["CAP_SYS_PTRACE"])'
	# With CAP_SYS_PTRACE the attacker does get a handle on the exe (not
	# dumpable no longer stops it): what it holds must be the sealed copy.
	assert_contains "$ATTACK_LOG" "GOT-EXE" "attack log (the attacker must get an exe handle for this test to mean anything)"
	assert_not_contains "$ATTACK_LOG" OVERWROTE "attack log"
	sec_assert_private_berth_intact
}

@test "[exe-race] CVE-2019-5736: a container racing 30 berth execs never gets a handle on a berth process" {
	sec_private_berth
	make_bundle "$B" sh -c 'sh /race.sh & exec sleep 1000'
	# A tight loop without forks for the common case (builtins only).
	sec_put "$B/rootfs/race.sh" 755 <<'SH'
#!/bin/sh
echo ready >/race.log
end=$(($(date +%s) + 60))
while [ ! -e /race.stop ] && [ "$(date +%s)" -lt "$end" ]; do
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = "$$" ] && continue
		read -r c <"$p/comm" 2>/dev/null || continue
		case "$c" in berth*) ;; *) continue ;; esac
		echo "seen ${p#/proc/}" >>/race.log
		cmp -s "$p/exe" "/proc/$$/exe" 2>/dev/null
		[ $? = 1 ] && echo "GOT-EXE ${p#/proc/}" >>/race.log
	done
done
echo done >>/race.log
SH
	ID=$(unique_id)
	BERTH=$BCOPY b run -d --bundle "$B" "$ID" >"$LOG" 2>&1 || fail "run -d failed: $(cat "$LOG")"
	wait_until 30 file_has "$B/rootfs/race.log" ready || fail "racer not ready"
	local i
	for ((i = 0; i < 30; i++)); do
		BERTH=$BCOPY b exec -e HOME=/ "$ID" true >"$LOG" 2>&1 || fail "exec $i failed: $(cat "$LOG")"
	done
	: >"$B/rootfs/race.stop"
	wait_until 30 file_has "$B/rootfs/race.log" "done" || fail "racer did not stop"
	assert_not_contains "$(cat "$B/rootfs/race.log")" GOT-EXE "race log"
	sec_assert_private_berth_intact
}

# ============================================ (b) leaked host descriptors

@test "[fds] CVE-2024-21626: run and exec give the container only stdio, whatever descriptors berth was started with" {
	make_bundle "$B" sh -c 'ls /proc/self/fd | tr "\n" " "'
	ID=$(unique_id)
	# Host descriptors on purpose: a file, the host's /, and $HOST.
	run --separate-stderr timeout -k 5 "$BERTH_TIMEOUT" "$BERTH" --root "$STATE" run --bundle "$B" "$ID" \
		<"$BERTH_EMPTY" 3>&- 5</etc/hostname 7</ 9<"$HOST"
	assert_status 0
	assert_eq "$output" "0 1 2 3 " "descriptors of ls in the container (3 is ls's own directory)"

	make_bundle "$B.2" sleep 1000
	ID=$(unique_id)
	b run -d --bundle "$B.2" "$ID" >"$LOG" 2>&1 </etc/hostname 5</ || fail "run -d failed: $(cat "$LOG")"
	run --separate-stderr timeout -k 5 "$BERTH_TIMEOUT" "$BERTH" --root "$STATE" exec "$ID" sh -c 'ls /proc/self/fd | tr "\n" " "' \
		<"$BERTH_EMPTY" 3>&- 5</etc/hostname 7</ 9<"$HOST"
	assert_status 0
	assert_eq "$output" "0 1 2 3 " "descriptors of ls in an exec'd process"
}

@test "[cwd] CVE-2024-21626: process.cwd and exec --cwd /proc/self/fd/N never put the process in a host directory" {
	mkdir -p "$HOST/dir"
	echo secret >"$HOST/dir/HOST-MARKER-$$"
	local before n out
	before=$(sec_snapshot "$HOST")
	make_bundle "$B" sh -c 'pwd -P; ls -a; touch ./written-from-the-container; echo end'
	local script='pwd -P; ls -a; touch ./written-from-the-container; echo end'
	for n in 3 4 5 6 7 8 9 10; do
		cfg "$B" '.process.cwd = $c' --arg c "/proc/self/fd/$n"
		ID=$(unique_id "$n")
		run --separate-stderr timeout -k 5 "$BERTH_TIMEOUT" "$BERTH" --root "$STATE" run --bundle "$B" "$ID" \
			<"$BERTH_EMPTY" 3>&- 5<"$HOST/dir" 7<"$HOST/dir" 8<"$HOST/dir" 9<"$HOST/dir" 10<"$HOST/dir"
		out="cwd /proc/self/fd/$n: status $status, stdout: $output, stderr: $stderr"
		assert_not_contains "$output" HOST-MARKER "run with $out"
		if [[ $status == 0 ]]; then
			assert_not_contains "${lines[0]:-}" unreachable "run with $out"
			[[ ${lines[0]:-} == /* ]] || fail "run with $out: the process has no cwd inside the container"
		fi
		sec_assert_host_unchanged "$before"
	done

	make_bundle "$B.2" sleep 1000
	ID=$(unique_id exec)
	b run -d --bundle "$B.2" "$ID" >"$LOG" 2>&1 || fail "run -d failed: $(cat "$LOG")"
	for n in 3 4 5 6 7 8 9 10; do
		run --separate-stderr timeout -k 5 "$BERTH_TIMEOUT" "$BERTH" --root "$STATE" exec --cwd "/proc/self/fd/$n" "$ID" sh -c "$script" \
			<"$BERTH_EMPTY" 3>&- 5<"$HOST/dir" 7<"$HOST/dir" 8<"$HOST/dir" 9<"$HOST/dir" 10<"$HOST/dir"
		out="exec --cwd /proc/self/fd/$n: status $status, stdout: $output, stderr: $stderr"
		assert_not_contains "$output" HOST-MARKER "$out"
		if [[ $status == 0 ]]; then
			assert_not_contains "${lines[0]:-}" unreachable "$out"
			[[ ${lines[0]:-} == /* ]] || fail "$out: the process has no cwd inside the container"
		fi
		sec_assert_host_unchanged "$before"
	done
}

# ===================================== (c) mount targets and special files

@test "[mounts] CVE-2021-30465: symlinks in the image cannot redirect mounts or the mount points berth creates onto the host" {
	mkdir -p "$HOST/abs" "$HOST/rel" "$HOST/direct"
	echo keep >"$HOST/abs/keep"
	echo keep >"$HOST/rel/keep"
	echo keep >"$HOST/direct/keep"
	local before up
	before=$(sec_snapshot "$HOST")
	up=$(sec_climb)
	mkdir -p "$BATS_TEST_TMPDIR/src"
	echo from-bundle-dir >"$BATS_TEST_TMPDIR/src/from-bundle"
	echo from-bundle-file >"$BATS_TEST_TMPDIR/src-file"

	# 1. Mount points below symlinks: berth must create them in the rootfs.
	make_bundle "$B" sh -c 'cat /data/newdir/deeper/from-bundle /rel/sub/from-bundle /etc/evil/conf; ls /data/tmp-mnt | wc -l'
	ln -s "$HOST/abs" "$B/rootfs/data"
	ln -s "${up}${HOST#/}/rel" "$B/rootfs/rel"
	ln -s "$HOST/abs" "$B/rootfs/etc/evil"
	cfg "$B" '.mounts += [
		{destination: "/data/newdir/deeper", type: "bind", source: $dir, options: ["rbind"]},
		{destination: "/rel/sub", type: "bind", source: $dir, options: ["rbind", "ro"]},
		{destination: "/etc/evil/conf", type: "bind", source: $file, options: ["bind", "ro"]},
		{destination: "/data/tmp-mnt", type: "tmpfs", source: "tmpfs", options: ["size=64k"]}]' \
		--arg dir "$BATS_TEST_TMPDIR/src" --arg file "$BATS_TEST_TMPDIR/src-file"
	run --separate-stderr b run --bundle "$B" "$(unique_id below)"
	sec_assert_host_unchanged "$before"
	if [[ $status == 0 ]]; then
		# Resolved inside the rootfs: the container sees every mount where
		# its own symlinks lead.
		assert_eq "${lines[*]}" "from-bundle-dir from-bundle-dir from-bundle-file 0" "what the container sees"
	else
		assert_contains "$stderr" "berth: " "error"
	fi

	# 2. A mount destination that is itself a symlink to a host directory.
	rm -rf "$B"
	make_bundle "$B" sh -c 'cat /direct/from-bundle 2>&1; ls /direct-rel/ 2>&1; echo end'
	ln -s "$HOST/direct" "$B/rootfs/direct"
	ln -s "${up}${HOST#/}/direct" "$B/rootfs/direct-rel"
	cfg "$B" '.mounts += [
		{destination: "/direct", type: "bind", source: $dir, options: ["rbind"]},
		{destination: "/direct-rel", type: "tmpfs", source: "tmpfs", options: ["size=64k"]}]' \
		--arg dir "$BATS_TEST_TMPDIR/src"
	run --separate-stderr b run --bundle "$B" "$(unique_id direct)"
	sec_assert_host_unchanged "$before"
	if [[ $status == 0 ]]; then
		assert_eq "${lines[*]}" "from-bundle-dir end" "what the container sees at /direct (bind) and /direct-rel (empty tmpfs)"
	else
		assert_contains "$stderr" "berth: " "error"
	fi
}

@test "[special-dirs] an image whose /proc, /dev or /sys is a symlink to the host makes berth create, mount or delete nothing there" {
	local up kind target before
	up=$(sec_climb)
	for kind in proc dev sys; do
		for target in "$HOST/$kind-abs" "${up}${HOST#/}/$kind-rel"; do
			mkdir -p "$HOST/$kind-abs" "$HOST/$kind-rel"
			echo keep >"$HOST/$kind-abs/keep"
			echo keep >"$HOST/$kind-rel/keep"
			before=$(sec_snapshot "$HOST")
			rm -rf "$B"
			make_bundle "$B" sh -c 'ls /proc/self/ >/dev/null; echo ok'
			rm -rf "${B:?}/rootfs/$kind"
			ln -s "$target" "$B/rootfs/$kind"
			ID=$(unique_id "$kind")
			run --separate-stderr b run --bundle "$B" "$ID"
			sec_assert_host_unchanged "$before"
			# Again without berth's /dev tmpfs: devices and /dev links are
			# then made in the image's own /dev.
			sec_rm_dev_mounts "$B"
			ID=$(unique_id "$kind-nodev")
			run --separate-stderr b run --bundle "$B" "$ID"
			sec_assert_host_unchanged "$before"
		done
	done
}

# Prints, for each masked file of `berth spec` that this kernel has, its
# type, device and first bytes, and writes to it (harmless on the null
# device; the tests check that no file behind a fake one changed).
SEC_MASK_CHECK='for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats /proc/timer_stats; do
	[ -e $p ] || continue
	echo "$p $(stat -c "%F %t:%T" $p) [$(head -c 64 $p 2>&1)]"
	echo pwned 2>/dev/null >$p
done; echo end'

# After `run` of SEC_MASK_CHECK: every masked file is the null device.
sec_assert_masked_by_null() {
	local line n=0
	for line in "${lines[@]}"; do
		[[ $line == /proc/* ]] || continue
		n=$((n + 1))
		[[ $line == *"character special file 1:3 []" ]] || fail "masked path not masked by the null device: $line"
	done
	((n > 0)) || fail "no masked path checked: $output"
}

@test "[devnull] CVE-2025-31133: masked paths are never covered with a /dev/null that is not the null device" {
	# A /dev volume whose "null" is a regular file (e.g. planted by another
	# container sharing the volume): masking with it would bind a writable
	# file over /proc/kcore and friends.
	mkdir -p "$HOST/devvol"
	echo FAKE-NULL-CONTENT >"$HOST/devvol/null"
	chmod 666 "$HOST/devvol/null"
	local before
	before=$(sec_snapshot "$HOST")
	make_bundle "$B" sh -c "$SEC_MASK_CHECK"
	sec_rm_dev_mounts "$B"
	cfg "$B" '.mounts += [{destination: "/dev", type: "bind", source: $v, options: ["rbind"]}]' --arg v "$HOST/devvol"
	ID=$(unique_id)
	run --separate-stderr b run --bundle "$B" "$ID"
	sec_assert_host_unchanged "$before"
	assert_not_contains "$output" FAKE-NULL-CONTENT "what the masked paths show"
	if [[ $status == 0 ]]; then
		sec_assert_masked_by_null
	else
		assert_contains "$stderr" /dev/null "error"
	fi

	# The image's own /dev/null (no /dev mount) is a symlink to a regular file.
	rm -rf "$B"
	make_bundle "$B" sh -c "$SEC_MASK_CHECK"
	sec_rm_dev_mounts "$B"
	echo FAKE-NULL-CONTENT >"$B/rootfs/etc/fake-null"
	chmod 666 "$B/rootfs/etc/fake-null"
	rm -f "$B/rootfs/dev/null"
	ln -s /etc/fake-null "$B/rootfs/dev/null"
	ID=$(unique_id img)
	run --separate-stderr b run --bundle "$B" "$ID"
	assert_not_contains "$output" FAKE-NULL-CONTENT "what the masked paths show"
	if [[ $status == 0 ]]; then
		sec_assert_masked_by_null
	else
		assert_contains "$stderr" /dev/null "error"
	fi
	assert_eq "$(cat "$B/rootfs/etc/fake-null")" FAKE-NULL-CONTENT "the image's fake null file"
}

@test "[console] CVE-2025-52565: /dev/console is the container's pty, never a host file an image symlink points at" {
	echo host-console-original >"$HOST/console-target"
	local before up target cmd ts i=0 out
	before=$(sec_snapshot "$HOST")
	up=$(sec_climb)
	# The last target is a decoy file in the image: binding the pty there
	# would show that berth follows the image's /dev/console symlink.
	for target in "$HOST/console-target" "${up}${HOST#/}/console-target" /proc/self/fd/7 /proc/1/fd/7 /etc/console-decoy; do
		i=$((i + 1))
		rm -rf "$B"
		make_bundle "$B" sh -c 'tty; stat -L -c "console %t:%T" /dev/console; stat -L -c "tty %t:%T" "$(tty)"; stat -c "decoy %F" /etc/console-decoy; echo end'
		echo decoy >"$B/rootfs/etc/console-decoy"
		cfg "$B" '.process.terminal = true'
		# The image's /dev, not a tmpfs: it ships /dev/console as a symlink.
		cfg "$B" '.mounts |= map(select(.destination != "/dev"))'
		mkdir -p "$B/rootfs/dev"
		ln -sfn "$target" "$B/rootfs/dev/console"
		ID=$(unique_id "$i")
		ts="$BATS_TEST_TMPDIR/typescript.$i"
		cmd=$(printf '%q ' "$BERTH" --root "$STATE" run --bundle "$B" "$ID")
		run timeout -k 5 60 script -qefc "$cmd 7<$(printf %q "$HOST/console-target")" "$ts" <"$BERTH_EMPTY"
		out=$(tr -d '\r' <"$ts")
		sec_assert_host_unchanged "$before"
		if [[ $status == 0 ]]; then
			local con tty
			con=$(grep '^console ' <<<"$out") || fail "/dev/console -> $target: no console line: $out"
			tty=$(grep '^tty ' <<<"$out") || fail "/dev/console -> $target: no tty line: $out"
			assert_eq "${con#console }" "${tty#tty }" "/dev/console -> $target: device of /dev/console vs the pty ($out)"
			assert_contains "$out" "decoy regular file" "/dev/console -> $target: the image's /etc/console-decoy"
		else
			assert_contains "$out" "berth: " "/dev/console -> $target: error"
		fi
	done
}

# ======================================================== (d) procfs writes

@test "[procfs] CVE-2025-52881: sysctl and oomScoreAdj are written to procfs, never to a file bind-mounted over it" {
	echo host-original >"$HOST/fake-sysctl"
	echo host-original >"$HOST/fake-oom"
	chmod 666 "$HOST/fake-sysctl" "$HOST/fake-oom"
	local before
	before=$(sec_snapshot "$HOST")
	make_bundle "$B" sh -c 'cat /proc/sys/kernel/shm_rmid_forced'
	cfg "$B" '.mounts += [{destination: "/proc/sys/kernel/shm_rmid_forced", type: "bind", source: $f, options: ["bind"]}]
		| .linux.sysctl = {"kernel.shm_rmid_forced": "1"}' --arg f "$HOST/fake-sysctl"
	ID=$(unique_id sysctl)
	run --separate-stderr b run --bundle "$B" "$ID"
	sec_assert_host_unchanged "$before"
	[[ $status == 0 ]] || assert_contains "$stderr" "berth: " "error"

	rm -rf "$B"
	make_bundle "$B" sh -c 'cat /proc/self/oom_score_adj'
	cfg "$B" '.mounts += [{destination: "/proc/self/oom_score_adj", type: "bind", source: $f, options: ["bind"]}]
		| .process.oomScoreAdj = 500' --arg f "$HOST/fake-oom"
	ID=$(unique_id oom)
	run --separate-stderr b run --bundle "$B" "$ID"
	sec_assert_host_unchanged "$before"
	[[ $status == 0 ]] || assert_contains "$stderr" "berth: " "error"

	# Through exec as well: the oomScoreAdj of the exec'd process.
	rm -rf "$B"
	make_bundle "$B" sleep 1000
	cfg "$B" '.mounts += [{destination: "/proc/sys/kernel/shm_rmid_forced", type: "bind", source: $f, options: ["bind"]}]' --arg f "$HOST/fake-sysctl"
	ID=$(unique_id exec)
	b run -d --bundle "$B" "$ID" >"$LOG" 2>&1 || fail "run -d failed: $(cat "$LOG")"
	echo '{"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "oomScoreAdj": 600}' >"$BATS_TEST_TMPDIR/process.json"
	run --separate-stderr b exec --process "$BATS_TEST_TMPDIR/process.json" "$ID"
	sec_assert_host_unchanged "$before"
}

# ===================================================== (e) inheritable caps

@test "[capinh] CVE-2022-29162: run and exec processes have an empty inheritable capability set" {
	make_bundle "$B" sh -c 'grep ^CapInh: /proc/self/status; sleep 1000'
	ID=$(unique_id)
	b run -d --bundle "$B" "$ID" >"$LOG" 2>&1 || fail "run -d failed: $(cat "$LOG")"
	run --separate-stderr b exec "$ID" grep ^CapInh: /proc/self/status
	assert_status 0
	assert_eq "$output" $'CapInh:\t0000000000000000' "exec with the default capabilities"
	run --separate-stderr b exec --cap CAP_SYS_ADMIN "$ID" grep ^CapInh: /proc/self/status
	assert_status 0
	assert_eq "$output" $'CapInh:\t0000000000000000' "exec --cap"
	run --separate-stderr b exec --user 1000:1000 "$ID" grep ^CapInh: /proc/self/status
	if [[ $status == 0 ]]; then assert_eq "$output" $'CapInh:\t0000000000000000' "exec --user 1000"; fi

	rm -rf "$B"
	make_bundle "$B" grep ^CapInh: /proc/self/status
	run --separate-stderr b run --bundle "$B" "$(unique_id)"
	assert_status 0
	assert_eq "$output" $'CapInh:\t0000000000000000' "run with the default capabilities"
	cfg "$B" '.process.capabilities |= {bounding: .bounding, effective: .effective, permitted: .permitted}'
	run --separate-stderr b run --bundle "$B" "$(unique_id)"
	assert_status 0
	assert_eq "$output" $'CapInh:\t0000000000000000' "run with capabilities but no inheritable list"
}

# ================================================= seccomp default profile

@test "[seccomp] default profile: sethostname is refused even with CAP_SYS_ADMIN, and allowed without the profile" {
	local spec="$BATS_TEST_TMPDIR/spec"
	mkdir -p "$spec"
	# shellcheck disable=SC2046
	"$BERTH" spec $(berth_spec_flags) --bundle "$spec" || fail "berth spec failed"
	jq -e '.linux.seccomp.syscalls | length > 0' "$spec/config.json" >/dev/null ||
		skip "berth spec writes no linux.seccomp profile"
	# The profile is the one for the 14 default capabilities: system calls
	# that need CAP_SYS_ADMIN stay blocked even if the capability is added.
	make_bundle "$B" sh -c 'hostname changed-by-container 2>/dev/null && echo SET; echo "now $(hostname)"; grep ^Seccomp: /proc/self/status'
	cfg "$B" '.process.capabilities |= with_entries(.value += ["CAP_SYS_ADMIN"])'
	run --separate-stderr b run --bundle "$B" "$(unique_id)"
	assert_status 0
	assert_not_contains "$output" SET "sethostname under the default profile"
	assert_contains "$output" "now berth" "hostname after the attempt (still the configured one)"
	assert_contains "$output" $'Seccomp:\t2' "seccomp mode of the process"
	# The control: the same container without the profile may do it.
	cfg "$B" 'del(.linux.seccomp)'
	run --separate-stderr b run --bundle "$B" "$(unique_id)"
	assert_status 0
	assert_contains "$output" SET "sethostname without the profile (control)"
	assert_contains "$output" "now changed-by-container" "hostname without the profile (control)"
}
