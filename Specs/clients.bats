#!/usr/bin/env bats
# shellcheck shell=bash disable=SC2016,SC2030,SC2031
#
# clients.bats — berth driven by real container engines, end to end:
#   * podman (+conmon) with `--runtime "$BERTH"`: run --rm / -i / -t / -d,
#     exec (-i, -t, -w, -e, --user), stop, kill, rm -f, start again, errors;
#   * containerd + ctr with `--runc-binary "$BERTH"`: run --rm / -t / -d,
#     task exec, task ps, task kill, task delete, create errors.
# Everything asserted is what a user of those tools sees (output, exit codes,
# states) plus "nothing left behind" checks after stop/kill/delete.
#
# Environment:
#   BERTH         absolute path of the runtime under test (default: `berth` on
#                 PATH). Must pass with BERTH=$(command -v runc).
#   BERTH_ROOTFS  busybox rootfs template (scripts/mkrootfs); when unset the
#                 file builds one (with scripts/mkrootfs if present, else from
#                 the static busybox itself).
#   BERTH_REPO    repository root (default: parent of this directory).
# As root, podman runs rootful and containerd tests run. As any other user
# podman runs rootless (if this host allows it, else those tests are skipped
# with the reason) and the containerd tests are skipped: containerd needs root.
#
# Isolation: every test gets its own podman --root/--runroot/tmp_dir/
# XDG_RUNTIME_DIR and containers.conf (CONTAINERS_CONF) in a fresh
# /tmp/bcl-pm.XXXXXX (podman wants a short runroot; CL_SHORT_TMP overrides
# /tmp), removed at teardown, and its own image import; this file starts one private containerd (own root, state, sockets,
# runc root, fifo dir) in setup_file and stops exactly that pid in
# teardown_file. Containers use no network (podman netns "none", containerd's
# default empty netns). Standalone: it does not load helpers.bash.

CL_TIMEOUT=${CL_TIMEOUT:-45}   # seconds any single podman/ctr call may take
CL_IMAGE=localhost/berth-clients-busybox:latest
CL_NS=berth-clients            # containerd namespace used by this file

# ------------------------------------------------------------ small helpers

cl_fail() {
	printf '%s\n' "$*" >&2
	return 1
}

# cl_wait SECONDS CMD... — poll CMD every 0.1 s until it succeeds.
cl_wait() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}

cl_pid_alive() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[[ ${s%% *} != Z ]]
}
cl_pid_dead() { ! cl_pid_alive "$1"; }

# cl_pids_matching STRING — pids (not ours) whose command line contains STRING.
cl_pids_matching() {
	local p pid cmd
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		[[ $cmd == *"$1"* && $cmd != *cl_pids_matching* ]] && echo "$pid"
	done
	return 0
}
cl_no_pids_matching() { [[ -z $(cl_pids_matching "$1") ]]; }

# cl_kill_pids PID... — TERM, then KILL, processes this file started.
cl_kill_pids() {
	local pid
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "$@"; do
		cl_wait 5 cl_pid_dead "$pid" || kill -KILL "$pid" 2>/dev/null || true
	done
}

# cl_mounts_under DIR — mount points below DIR (deepest first).
cl_mounts_under() {
	awk -v d="$1" '{ mp = $5; gsub(/\\040/, " ", mp) }
		index(mp, d "/") == 1 { print mp }' /proc/self/mountinfo | sort -r
}

# cl_umount_under DIR — as root, detach any mount left below DIR (never
# anything outside it).
cl_umount_under() {
	[[ $(id -u) == 0 ]] || return 0
	local mp
	while read -r mp; do
		[[ -n $mp ]] && umount -l "$mp" 2>/dev/null || true
	done < <(cl_mounts_under "$1")
}

# clx [--in FILE] [--timeout S] CMD... — run CMD with stdin from FILE (an
# empty file by default), stdout/stderr through files (so daemonized helpers
# such as conmon can never hold bats' pipes open) and bats' fd 3 closed,
# bounded by a timeout. Sets status, output (stdout, CRs removed), stderr and
# lines, and logs the call for the failure report.
clx() {
	local in=$CL_EMPTY t=$CL_TIMEOUT o e
	while (($#)); do
		case $1 in
		--in) in=$2; shift 2 ;;
		--timeout) t=$2; shift 2 ;;
		*) break ;;
		esac
	done
	o=$(mktemp "$BATS_TEST_TMPDIR/.clx.out.XXXXXX")
	e=$(mktemp "$BATS_TEST_TMPDIR/.clx.err.XXXXXX")
	status=0
	timeout -k 5 "$t" "$@" <"$in" >"$o" 2>"$e" 3>&- || status=$?
	output=$(tr -d '\r' <"$o")
	stderr=$(tr -d '\r' <"$e")
	mapfile -t lines <<<"$output"
	[[ -n $output ]] || lines=()
	{
		printf '$ %s  [exit %s]\n' "$*" "$status"
		[[ -z $output ]] || printf '%s\n' "$output" | sed 's/^/  out: /'
		[[ -z $stderr ]] || printf '%s\n' "$stderr" | sed 's/^/  err: /'
	} >>"$BATS_TEST_TMPDIR/.clx.log"
	rm -f "$o" "$e"
	return 0
}

cl_show_log() { [[ ! -f $BATS_TEST_TMPDIR/.clx.log ]] || cat "$BATS_TEST_TMPDIR/.clx.log" >&2; }

# cl_status N — after clx.
cl_status() {
	[[ $status == "$1" ]] || cl_fail "expected exit status $1, got $status (see the command log below)"
}
# cl_has NEEDLE [HAYSTACK] — HAYSTACK defaults to $output.
cl_has() {
	local hay=${2-$output}
	[[ $hay == *"$1"* ]] || cl_fail "expected to find '$1' in:
$hay"
}
cl_eq() {
	[[ $1 == "$2" ]] || cl_fail "${3:-value}: expected '$2', got '$1'"
}

# ------------------------------------------------------------ environment

cl_resolve_env() {
	[[ -n ${BERTH_REPO:-} ]] || BERTH_REPO=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	[[ -n ${BERTH:-} ]] || BERTH=$(command -v berth || true)
	if [[ -n $BERTH && $BERTH != /* ]]; then BERTH=$(command -v "$BERTH" || true); fi
	export BERTH BERTH_REPO
}

cl_arch() {
	case $(uname -m) in
	x86_64) echo amd64 ;;
	aarch64) echo arm64 ;;
	armv7l) echo arm ;;
	*) dpkg --print-architecture 2>/dev/null || uname -m ;;
	esac
}

# cl_build_rootfs DIR — busybox rootfs, for when BERTH_ROOTFS is not given.
cl_build_rootfs() {
	local dir=$1 bb a
	if [[ -x $BERTH_REPO/scripts/mkrootfs ]]; then
		"$BERTH_REPO/scripts/mkrootfs" "$dir" >&2 && return 0
		echo "scripts/mkrootfs failed; building the rootfs directly" >&2
	fi
	bb=${BUSYBOX:-/bin/busybox}
	[[ -x $bb ]] || cl_fail "no BERTH_ROOTFS and no static busybox at $bb (install busybox-static)" || return 1
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,etc,proc,sys,dev,tmp,root,run,var,home/user,usr}
	chmod 1777 "$dir/tmp"
	cp "$bb" "$dir/bin/busybox"
	for a in $("$bb" --list); do
		[[ $a == busybox || -e $dir/bin/$a ]] || ln -s busybox "$dir/bin/$a"
	done
	ln -s bin "$dir/sbin"
	ln -s ../bin "$dir/usr/bin"
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'user:x:1000:1000:user:/home/user:/bin/sh' \
		'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$dir/etc/passwd"
	printf '%s\n' 'root:x:0:' 'user:x:1000:' 'nogroup:x:65534:' >"$dir/etc/group"
	: >"$dir/etc/hostname"
	: >"$dir/etc/resolv.conf"
	printf '127.0.0.1\tlocalhost\n' >"$dir/etc/hosts"
}

# cl_make_image_files — $CL_FILE/rootfs.tar (for podman import) and
# $CL_FILE/image.tar (a docker-archive for ctr image import), root-owned.
cl_make_image_files() {
	local rootfs=${BERTH_ROOTFS:-}
	if [[ -z $rootfs ]]; then
		rootfs=$CL_FILE/rootfs
		cl_build_rootfs "$rootfs" || return 1
	fi
	[[ -x $rootfs/bin/sh ]] || cl_fail "rootfs $rootfs has no executable bin/sh" || return 1
	tar --numeric-owner --owner=0 --group=0 --exclude=./.complete \
		-C "$rootfs" -cf "$CL_FILE/rootfs.tar" . ||
		cl_fail "could not tar $rootfs" || return 1

	# docker-archive: manifest.json + config + one layer
	local img=$CL_FILE/image diff cfg
	mkdir -p "$img"
	diff=$(sha256sum "$CL_FILE/rootfs.tar" | cut -d' ' -f1)
	mkdir -p "$img/$diff"
	cp "$CL_FILE/rootfs.tar" "$img/$diff/layer.tar"
	jq -cn --arg arch "$(cl_arch)" --arg diff "sha256:$diff" '{
		architecture: $arch, os: "linux",
		config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"]},
		rootfs: {type: "layers", diff_ids: [$diff]}}' >"$img/config.json"
	cfg=$(sha256sum "$img/config.json" | cut -d' ' -f1)
	mv "$img/config.json" "$img/$cfg.json"
	jq -cn --arg cfg "$cfg.json" --arg tag "$CL_IMAGE" --arg layer "$diff/layer.tar" \
		'[{Config: $cfg, RepoTags: [$tag], Layers: [$layer]}]' >"$img/manifest.json"
	tar -C "$img" -cf "$CL_FILE/image.tar" manifest.json "$cfg.json" "$diff/layer.tar" &&
		rm -rf "$img"
}

# ------------------------------------------------------------- containerd

cl_ctrd_reason() {
	if [[ $(id -u) != 0 ]]; then
		echo "containerd tests need root: containerd must mount snapshots and create cgroups, and this host has no rootless containerd setup (rootlesskit: $(command -v rootlesskit || echo absent)); running as uid $(id -u)"
		return
	fi
	local t
	for t in containerd ctr containerd-shim-runc-v2; do
		command -v "$t" >/dev/null || { echo "$t is not installed"; return; }
	done
}

cl_ctrd_start() {
	CL_CTRD=$CL_FILE/ctrd
	mkdir -p "$CL_CTRD"/{root,state,runc,fifo,opt}
	cat >"$CL_CTRD/config.toml" <<-EOF
		version = 2
		root = "$CL_CTRD/root"
		state = "$CL_CTRD/state"
		disabled_plugins = ["io.containerd.grpc.v1.cri"]
		[grpc]
		  address = "$CL_CTRD/c.sock"
		[ttrpc]
		  address = "$CL_CTRD/c.sock.ttrpc"
		[debug]
		  address = ""
		[metrics]
		  address = ""
		[plugins."io.containerd.internal.v1.opt"]
		  path = "$CL_CTRD/opt"
	EOF
	containerd --config "$CL_CTRD/config.toml" <"$CL_EMPTY" >"$CL_CTRD/containerd.log" 2>&1 3>&- &
	CL_CTRD_PID=$!
	echo "$CL_CTRD_PID" >"$CL_CTRD/pid"
	export CL_CTRD CL_CTRD_PID
	cl_write_ctr_wrapper
	local ok=0 i
	for ((i = 0; i < 200; i++)); do
		if "$CL_CTRD/ctr" version >/dev/null 2>&1; then ok=1; break; fi
		cl_pid_alive "$CL_CTRD_PID" || break
		sleep 0.1
	done
	((ok)) || cl_fail "private containerd did not come up: $(tail -n 20 "$CL_CTRD/containerd.log")" || return 1
	timeout 120 "$CL_CTRD/ctr" image import "$CL_FILE/image.tar" >"$CL_CTRD/import.log" 2>&1 3>&- ||
		cl_fail "ctr image import failed: $(cat "$CL_CTRD/import.log")" || return 1
}

# $CL_CTRD/ctr: ctr bound to the private containerd and namespace.
cl_write_ctr_wrapper() {
	cat >"$CL_CTRD/ctr" <<-EOF
		#!/bin/sh
		exec ctr --address "$CL_CTRD/c.sock" --namespace "$CL_NS" "\$@"
	EOF
	chmod +x "$CL_CTRD/ctr"
}

cl_ctrd_stop() {
	[[ -n ${CL_CTRD_PID:-} ]] || return 0
	local id
	if cl_pid_alive "$CL_CTRD_PID"; then
		for id in $(timeout 30 "$CL_CTRD/ctr" task ls -q 2>/dev/null); do
			timeout 30 "$CL_CTRD/ctr" task kill -a -s SIGKILL "$id" >/dev/null 2>&1 3>&- || true
			timeout 30 "$CL_CTRD/ctr" task delete -f "$id" >/dev/null 2>&1 3>&- || true
		done
		for id in $(timeout 30 "$CL_CTRD/ctr" container ls -q 2>/dev/null); do
			timeout 30 "$CL_CTRD/ctr" container rm "$id" >/dev/null 2>&1 3>&- || true
		done
	fi
	cl_kill_pids "$CL_CTRD_PID"
	# shims of our containerd outlive it by design; they name our socket.
	# shellcheck disable=SC2046
	cl_kill_pids $(cl_pids_matching "$CL_CTRD/c.sock")
	cl_umount_under "$CL_CTRD"
	# the runtime creates the namespace's parent cgroup (/<ns>/<id>) and
	# removes only <id>; drop the parent when empty (rmdir fails otherwise)
	if [[ $(id -u) == 0 ]]; then
		rmdir /sys/fs/cgroup/*/"$CL_NS" /sys/fs/cgroup/"$CL_NS" 2>/dev/null || true
	fi
}

# Per-test containerd bookkeeping: ids to force-remove at teardown.
cl_ctr_id() {
	local id="c${BATS_TEST_NUMBER}-$1-$RANDOM"
	echo "$id" >>"$BATS_TEST_TMPDIR/.ctr-ids"
	echo "$id"
}

cl_ctr_cleanup() {
	[[ -s $BATS_TEST_TMPDIR/.ctr-ids ]] || return 0
	local id
	while read -r id; do
		timeout 30 "$CL_CTRD/ctr" task kill -a -s SIGKILL "$id" >/dev/null 2>&1 3>&- || true
		timeout 30 "$CL_CTRD/ctr" task delete -f "$id" >/dev/null 2>&1 3>&- || true
		timeout 30 "$CL_CTRD/ctr" container rm "$id" >/dev/null 2>&1 3>&- || true
	done <"$BATS_TEST_TMPDIR/.ctr-ids"
	: >"$BATS_TEST_TMPDIR/.ctr-ids"
}

cl_need_ctrd() {
	[[ -z ${CL_CTRD_SKIP:-} ]] || skip "$CL_CTRD_SKIP"
	[[ -z ${CL_CTRD_ERROR:-} ]] || cl_fail "$CL_CTRD_ERROR" || return 1
	if [[ -z ${CL_CTRD_PID:-} ]] || ! cl_pid_alive "$CL_CTRD_PID"; then
		cl_fail "the private containerd (pid ${CL_CTRD_PID:-?}) is not running: $(tail -n 20 "$CL_CTRD/containerd.log" 2>&1)"
	fi
}

# cl_ctr_run_args — `ctr run` flags: the runtime under test, its --root and
# the FIFO dir inside this file's private directory.
cl_ctr_run_args() { echo --runc-binary "$BERTH" --runc-root "$CL_CTRD/runc" --fifo-dir "$CL_CTRD/fifo"; }

# cl_task_status ID — STATUS column of `ctr task ls` for ID (empty if absent).
cl_task_status() {
	timeout 30 "$CL_CTRD/ctr" task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'
}
cl_task_pid() {
	timeout 30 "$CL_CTRD/ctr" task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'
}
cl_task_is() { [[ $(cl_task_status "$1") == "$2" ]]; }

# cl_assert_ctr_gone ID INITPID — after task delete + container rm.
cl_assert_ctr_gone() {
	local id=$1 pid=$2 left
	clx "$CL_CTRD/ctr" task ls -q
	[[ $'\n'$output$'\n' != *$'\n'"$id"$'\n'* ]] || cl_fail "task $id still listed by ctr task ls"
	clx "$CL_CTRD/ctr" container ls -q
	[[ $'\n'$output$'\n' != *$'\n'"$id"$'\n'* ]] || cl_fail "container $id still listed by ctr container ls"
	[[ -z $pid ]] || cl_wait 5 cl_pid_dead "$pid" || cl_fail "init process $pid of $id is still alive"
	cl_wait 10 cl_no_pids_matching "-id $id " ||
		cl_fail "processes for $id still running: $(cl_pids_matching "-id $id ")"
	[[ ! -e $CL_CTRD/state/io.containerd.runtime.v2.task/$CL_NS/$id ]] ||
		cl_fail "bundle left behind: $(ls -la "$CL_CTRD/state/io.containerd.runtime.v2.task/$CL_NS/$id")"
	left=$(find "$CL_CTRD/runc" -name "*$id*" 2>/dev/null)
	[[ -z $left ]] || cl_fail "runtime state left behind under --root: $left"
	left=$(grep -F "$id" /proc/self/mountinfo || true)
	[[ -z $left ]] || cl_fail "mounts left behind: $left"
	left=$(ls -d /sys/fs/cgroup/*/"$CL_NS/$id" /sys/fs/cgroup/"$CL_NS/$id" 2>/dev/null || true)
	[[ -z $left ]] || cl_fail "cgroups left behind: $left"
}

# ----------------------------------------------------------------- podman

cl_podman_reason() {
	command -v podman >/dev/null || { echo "podman is not installed"; return; }
	command -v conmon >/dev/null || [[ -x /usr/libexec/podman/conmon ]] ||
		{ echo "conmon is not installed"; return; }
	[[ $(id -u) == 0 ]] && return
	# rootless: podman needs a user namespace with this user mapped
	local me max
	me=$(id -un)
	max=$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)
	((max > 0)) || { echo "rootless podman impossible: user namespaces are disabled (user.max_user_namespaces=$max)"; return; }
	if [[ $(cat /proc/sys/kernel/unprivileged_userns_clone 2>/dev/null || echo 1) == 0 ]]; then
		echo "rootless podman impossible: kernel.unprivileged_userns_clone=0"
		return
	fi
	# final word: can podman itself set up its rootless environment here?
	local d out
	d=$(cl_pm_mkdir) || { echo "cannot create a directory under ${CL_SHORT_TMP:-/tmp}"; return; }
	cl_pm_prepare "$d"
	if ! out=$(timeout 120 "$d/podman" info --format '{{.Host.Security.Rootless}}' 2>&1 <"$CL_EMPTY" 3>&-); then
		echo "rootless podman cannot run as $me here: $(printf '%s' "$out" | grep -v '^ *$' | tail -n 3 | tr '\n' ' ')"
	fi
	cl_pm_teardown "$d"
}

# cl_pm_mkdir — a fresh directory for one private podman. It lives directly
# under ${CL_SHORT_TMP:-/tmp}, not in bats' tmpdir: podman refuses a --runroot
# longer than 50 characters.
cl_pm_mkdir() {
	local d
	d=$(mktemp -d "${CL_SHORT_TMP:-/tmp}/bcl-pm.XXXXXX") || return 1
	chmod 0755 "$d"
	echo "$d"
}

# cl_pm_prepare DIR — private podman world in DIR plus DIR/podman, a wrapper
# running `podman --root --runroot --runtime "$BERTH"` with it.
cl_pm_prepare() {
	local d=$1 nofile nproc hard
	mkdir -p "$d"/{storage,run,tmp,xdg,cfg,data,net}
	chmod 0700 "$d/xdg"
	# Root podman asks for RLIMIT_NOFILE/NPROC 1048576 by default, which a
	# runtime cannot grant without CAP_SYS_RESOURCE (absent on some hosts):
	# ask for limits at or below our own hard limits instead.
	hard=$(ulimit -Hn)
	nofile=1024
	[[ $hard == unlimited ]] || ((hard >= nofile)) || nofile=$hard
	hard=$(ulimit -Hu)
	nproc=4096
	[[ $hard == unlimited ]] || ((hard >= nproc)) || nproc=$hard
	cat >"$d/containers.conf" <<-EOF
		[containers]
		default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
		# podman asks for a pids limit of 2048 by default; berth applies
		# limits through cgroup v2 only, and refuses them where (as on a
		# hybrid host) v2 lacks the controller: ask for none.
		pids_limit = 0
		netns = "none"
		[engine]
		cgroup_manager = "cgroupfs"
		events_logger = "file"
		tmp_dir = "$d/tmp"
		image_copy_tmp_dir = "$d/tmp"
		volume_path = "$d/storage/volumes"
		${CL_PM_ENGINE_EXTRA:-}
		[network]
		network_config_dir = "$d/net"
	EOF
	local xdg_line='unset XDG_RUNTIME_DIR'
	[[ $(id -u) == 0 ]] || xdg_line="export XDG_RUNTIME_DIR='$d/xdg'"
	cat >"$d/podman" <<-EOF
		#!/bin/bash
		export CONTAINERS_CONF='$d/containers.conf' XDG_CONFIG_HOME='$d/cfg' XDG_DATA_HOME='$d/data' TMPDIR='$d/tmp'
		$xdg_line
		exec podman --root '$d/storage' --runroot '$d/run' --runtime "\$BERTH" "\$@"
	EOF
	chmod +x "$d/podman"
}

# cl_pm_teardown DIR — remove every container of this private podman, stop
# what it left running (conmon, cleanup processes, rootless pause process:
# all started by this test and all naming DIR), then delete DIR.
cl_pm_teardown() {
	local d=$1 pause
	[[ -n $d && -d $d ]] || return 0
	[[ -x $d/podman ]] || { rm -rf --one-file-system "$d"; return 0; }
	timeout 60 "$d/podman" rm -a -f -t 0 >/dev/null 2>&1 <"$CL_EMPTY" 3>&- || true
	cl_wait 10 cl_no_pids_matching "$d/" || true
	# shellcheck disable=SC2046
	cl_kill_pids $(cl_pids_matching "$d/")
	if [[ $(id -u) != 0 ]]; then
		# files created inside containers may belong to subordinate ids
		timeout 60 "$d/podman" unshare rm -rf "$d/storage" "$d/run" >/dev/null 2>&1 <"$CL_EMPTY" 3>&- || true
		# the rootless pause process (catatonit) podman started for this
		# XDG_RUNTIME_DIR; podman 4 keeps its pid in tmp_dir
		for pause in "$d/tmp/pause.pid" "$d/xdg/libpod/tmp/pause.pid"; do
			if [[ -s $pause ]]; then cl_kill_pids "$(cat "$pause")"; fi
		done
	fi
	cl_umount_under "$d"
	rm -rf --one-file-system "$d" 2>/dev/null || true
}

# cl_pm_init — per-test podman with the image imported; sets PM_DIR, PM.
cl_pm_init() {
	[[ -z ${CL_PODMAN_SKIP:-} ]] || skip "$CL_PODMAN_SKIP"
	PM_DIR=$(cl_pm_mkdir) || cl_fail "cannot create a directory under ${CL_SHORT_TMP:-/tmp}" || return 1
	echo "$PM_DIR" >"$BATS_TEST_TMPDIR/.pm-dir"
	cl_pm_prepare "$PM_DIR"
	PM=$PM_DIR/podman
	clx "$PM" import "$CL_FILE/rootfs.tar" "$CL_IMAGE"
	[[ $status == 0 ]] || cl_fail "podman import failed" || return 1
}

cl_root_only() {
	[[ $(id -u) == 0 ]] || skip "$1"
}

# cl_maps_uid_1000 — can this podman run a container process as uid 1000?
# (rootless podman needs a subordinate id range for that)
cl_maps_uid_1000() {
	[[ $(id -u) == 0 ]] || grep -qE "^($(id -un)|$(id -u)):" /etc/subuid 2>/dev/null
}

# cl_inspect NAME FORMAT
cl_inspect() {
	timeout 60 "$PM" inspect --format "$2" "$1" 2>&1 <"$CL_EMPTY" 3>&-
}
cl_is_running() { [[ $(cl_inspect "$1" '{{.State.Status}}') == running ]]; }

# cl_assert_no_cgroup NAME-PART — no cgroup directory named *NAME-PART* left
# (cgroupfs manager: libpod_parent/libpod-<id>).
cl_assert_no_cgroup() {
	[[ $(id -u) == 0 ]] || return 0
	local left
	left=$(find /sys/fs/cgroup -maxdepth 4 -type d -name "*$1*" 2>/dev/null | head -n 5)
	[[ -z $left ]] || cl_fail "cgroups left behind: $left"
}

# ------------------------------------------------------------ bats hooks

setup_file() {
	cl_resolve_env
	[[ -n $BERTH && -x $BERTH ]] ||
		cl_fail "runtime under test not found: set BERTH to an absolute path (or put berth on PATH)" || return 1
	CL_FILE=$BATS_FILE_TMPDIR
	CL_EMPTY=$CL_FILE/.empty
	: >"$CL_EMPTY"
	chmod 0755 "$CL_FILE"
	export CL_FILE CL_EMPTY
	cl_make_image_files || return 1

	CL_PODMAN_SKIP=$(cl_podman_reason)
	CL_CTRD_SKIP=$(cl_ctrd_reason)
	export CL_PODMAN_SKIP CL_CTRD_SKIP
	# a containerd that will not start fails the ctr tests, not the file
	CL_CTRD_ERROR=
	if [[ -z $CL_CTRD_SKIP ]] && ! cl_ctrd_start 2>"$CL_FILE/ctrd-setup.err"; then
		CL_CTRD_ERROR="private containerd setup failed: $(cat "$CL_FILE/ctrd-setup.err")"
	fi
	export CL_CTRD_ERROR
}

teardown_file() {
	cl_ctrd_stop
}

setup() {
	CL_EMPTY=$CL_FILE/.empty
	: >"$BATS_TEST_TMPDIR/.ctr-ids"
	: >"$BATS_TEST_TMPDIR/.clx.log"
	PM_DIR=
}

teardown() {
	cl_show_log
	cl_ctr_cleanup
	if [[ -s $BATS_TEST_TMPDIR/.pm-dir ]]; then
		cl_pm_teardown "$(cat "$BATS_TEST_TMPDIR/.pm-dir")"
	fi
}

# ================================================================= podman

@test "podman: run --rm prints the command's output and exits 0" {
	cl_pm_init
	clx "$PM" run --rm "$CL_IMAGE" echo hello from berth
	cl_status 0
	cl_eq "$output" "hello from berth" "stdout"
	clx "$PM" run --rm "$CL_IMAGE" sh -c 'echo to-stderr >&2'
	cl_status 0
	cl_has to-stderr "$stderr"
	# --rm removed it
	clx "$PM" ps -a -q
	cl_eq "$output" "" "podman ps -a after run --rm"
}

@test "podman: run --rm returns the container's exit code" {
	cl_pm_init
	clx "$PM" run --rm "$CL_IMAGE" sh -c 'exit 3'
	cl_status 3
	clx "$PM" run --rm "$CL_IMAGE" false
	cl_status 1
}

@test "podman: a missing or non-executable command maps to 127 / 126" {
	cl_pm_init
	clx "$PM" run --rm "$CL_IMAGE" /nonexistent
	cl_status 127
	cl_has /nonexistent "$stderr"
	clx "$PM" run --rm "$CL_IMAGE" /etc/passwd
	cl_status 126
	cl_has /etc/passwd "$stderr"
	clx "$PM" ps -a -q
	cl_eq "$output" "" "podman ps -a after failed runs"
}

@test "podman: runtime errors reach podman through the JSON --log file" {
	# Declaring the runtime JSON-capable makes conmon pass
	# `--log-format=json --log FILE` (as podman does for runc) and podman
	# parse FILE on failure.
	CL_PM_ENGINE_EXTRA="runtime_supports_json = [\"$(basename "$BERTH")\"]"
	cl_pm_init
	clx "$PM" run --name bad "$CL_IMAGE" /nonexistent
	cl_status 127
	cl_has /nonexistent "$stderr"
	[[ $stderr != *'level=error'* ]] || cl_fail "podman showed logrus-style runtime stderr; with --log the error belongs in the JSON log file and only the plain message on stderr: $stderr"
	local id log
	id=$(cl_inspect bad '{{.Id}}')
	log=$(find "$PM_DIR/run" -path "*$id*" -name oci-log | head -n 1)
	[[ -n $log ]] || cl_fail "no oci-log written for $id under $PM_DIR/run"
	# one JSON object per line, like runc's --log-format json; podman uses
	# the file when it holds exactly one object, else the runtime's stderr
	jq -e -s 'length >= 1 and all(.[]; (.level | type == "string") and (.msg | type == "string"))
		and any(.[]; .level == "error" and (.msg | contains("/nonexistent")))' "$log" >/dev/null ||
		cl_fail "oci-log has no JSON error entry about /nonexistent: $(cat "$log")"
	clx "$PM" rm bad
	cl_status 0
}

@test "podman: run --rm -i passes stdin through" {
	cl_pm_init
	printf 'line one\nline two\n' >"$BATS_TEST_TMPDIR/in"
	clx --in "$BATS_TEST_TMPDIR/in" "$PM" run --rm -i "$CL_IMAGE" sh -c 'cat; echo done'
	cl_status 0
	cl_eq "$output" $'line one\nline two\ndone' "stdout"
}

@test "podman: run --rm -t gives the container a terminal" {
	cl_pm_init
	clx "$PM" run --rm -t "$CL_IMAGE" sh -c 'tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty; exit 4'
	cl_status 4
	[[ ${lines[0]} =~ ^/dev/pts/[0-9]+$ ]] || cl_fail "tty printed '${lines[0]}'"
	cl_has all-tty
}

@test "podman: the container runs with the requested identity and isolation" {
	cl_pm_init
	clx "$PM" run --rm --hostname box1 -w /tmp -e FOO=bar "$CL_IMAGE" \
		sh -c 'hostname; pwd; echo "$FOO"; echo $$; ls /sys/class/net; echo x >/dev/null && head -c 3 /dev/zero | wc -c; id -u'
	cl_status 0
	cl_eq "$output" $'box1\n/tmp\nbar\n1\nlo\n3\n0' "stdout"
	cl_maps_uid_1000 || skip "no /etc/subuid range for $(id -un): rootless podman cannot map uid 1000"
	clx "$PM" run --rm --user 1000:1000 "$CL_IMAGE" id
	cl_status 0
	cl_has "uid=1000(user) gid=1000(user)"
}

@test "podman: run -d, then exec (-i, -t, -w, -e, --user, exit codes) and logs" {
	cl_pm_init
	clx "$PM" run -d --name web "$CL_IMAGE" sh -c 'echo started; exec sleep 1000'
	cl_status 0
	[[ $output =~ ^[0-9a-f]{64}$ ]] || cl_fail "run -d printed '$output', not a container id"
	cl_wait 10 cl_is_running web || cl_fail "container is not running: $(cl_inspect web '{{.State.Status}}')"

	clx "$PM" exec web echo hi
	cl_status 0
	cl_eq "$output" hi "exec stdout"

	clx "$PM" exec web sh -c 'echo out; echo err >&2; exit 5'
	cl_status 5
	cl_eq "$output" out "exec stdout"
	cl_has err "$stderr"

	# exec joins the container: its PID 1 is the container's sleep
	clx "$PM" exec web ps -o pid,args
	cl_status 0
	[[ $output =~ (^|$'\n')\ *1\ sleep\ 1000 ]] || cl_fail "exec does not see the container's PID 1:
$output"

	clx "$PM" exec -w /tmp -e FOO=bar web sh -c 'pwd; echo "$FOO"'
	cl_status 0
	cl_eq "$output" $'/tmp\nbar' "exec -w -e"

	printf 'piped\n' >"$BATS_TEST_TMPDIR/in"
	clx --in "$BATS_TEST_TMPDIR/in" "$PM" exec -i web cat
	cl_status 0
	cl_eq "$output" piped "exec -i"

	clx "$PM" exec -t web sh -c 'tty; exit 6'
	cl_status 6
	[[ $output =~ ^/dev/pts/[0-9]+$ ]] || cl_fail "exec -t: tty printed '$output'"

	clx "$PM" exec web /nonexistent
	cl_status 127

	clx "$PM" logs web
	cl_status 0
	cl_eq "$output" started "podman logs"

	if cl_maps_uid_1000; then
		clx "$PM" exec --user 1000 web id -u
		cl_status 0
		cl_eq "$output" 1000 "exec --user"
	fi

	# still running after all that
	cl_is_running web || cl_fail "container stopped during the exec calls"
}

@test "podman: stop delivers SIGTERM and the container leaves the running state" {
	cl_pm_init
	clx "$PM" run -d --name svc "$CL_IMAGE" sh -c 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.1; done'
	cl_status 0
	local id=$output pid
	cl_wait 10 cl_is_running svc || cl_fail "container is not running"
	pid=$(cl_inspect svc '{{.State.Pid}}')
	[[ $pid =~ ^[0-9]+$ && $pid != 0 ]] || cl_fail "no pid for the running container: '$pid'"
	# the trap must be installed before we signal
	logs_ready() { [[ $(timeout 30 "$PM" logs svc 2>/dev/null <"$CL_EMPTY" 3>&-) == *ready* ]]; }
	cl_wait 10 logs_ready || cl_fail "container never printed ready"

	local t0=$SECONDS
	clx "$PM" stop -t 10 svc
	cl_status 0
	((SECONDS - t0 < 8)) || cl_fail "stop took $((SECONDS - t0))s: SIGTERM did not stop the container"
	cl_eq "$(cl_inspect svc '{{.State.Status}} {{.State.ExitCode}}')" "exited 7" "state after stop"
	clx "$PM" ps -q
	cl_eq "$output" "" "podman ps (running containers)"
	clx "$PM" logs svc
	cl_has got-term
	cl_wait 5 cl_pid_dead "$pid" || cl_fail "container process $pid survived podman stop"

	clx "$PM" exec svc true
	[[ $status != 0 ]] || cl_fail "exec into a stopped container succeeded"

	clx "$PM" rm svc
	cl_status 0
	clx "$PM" ps -a -q
	cl_eq "$output" "" "podman ps -a after rm"
	cl_wait 10 cl_no_pids_matching "$id" || cl_fail "processes for $id left: $(cl_pids_matching "$id")"
	cl_assert_no_cgroup "$id"
}

@test "podman: stop falls back to SIGKILL for a process ignoring SIGTERM" {
	cl_pm_init
	# busybox sleep as PID 1 has no SIGTERM handler, so SIGTERM is ignored
	clx "$PM" run -d --name stubborn "$CL_IMAGE" sleep 1000
	cl_status 0
	cl_wait 10 cl_is_running stubborn || cl_fail "container is not running"
	clx "$PM" stop -t 1 stubborn
	cl_status 0
	cl_eq "$(cl_inspect stubborn '{{.State.Status}} {{.State.ExitCode}}')" "exited 137" "state after stop"
	clx "$PM" rm stubborn
	cl_status 0
}

@test "podman: a stopped container can be started again" {
	cl_pm_init
	clx "$PM" run -d --name again "$CL_IMAGE" sh -c 'trap "exit 7" TERM; while :; do sleep 0.1; done'
	cl_status 0
	cl_wait 10 cl_is_running again || cl_fail "container is not running"
	clx "$PM" stop -t 10 again
	cl_status 0
	clx "$PM" start again
	cl_status 0
	cl_wait 10 cl_is_running again || cl_fail "container did not run again: $(cl_inspect again '{{.State.Status}}')"
	clx "$PM" exec again echo second-life
	cl_status 0
	cl_eq "$output" second-life "exec after restart"
	clx "$PM" restart -t 10 again
	cl_status 0
	cl_wait 10 cl_is_running again || cl_fail "container did not come back after restart"
	clx "$PM" stop -t 10 again
	cl_status 0
	cl_eq "$(cl_inspect again '{{.State.Status}} {{.State.ExitCode}}')" "exited 7" "state after second stop"
}

@test "podman: kill and rm -f remove a running container completely" {
	cl_pm_init
	clx "$PM" run -d --name k1 "$CL_IMAGE" sleep 1000
	cl_status 0
	cl_wait 10 cl_is_running k1 || cl_fail "k1 is not running"
	clx "$PM" kill k1
	cl_status 0
	clx "$PM" wait k1
	cl_status 0
	cl_eq "$output" 137 "podman wait after kill"

	clx "$PM" run -d --name k2 "$CL_IMAGE" sleep 1000
	cl_status 0
	local id=$output pid
	cl_wait 10 cl_is_running k2 || cl_fail "k2 is not running"
	pid=$(cl_inspect k2 '{{.State.Pid}}')
	clx "$PM" rm -f -t 0 k2
	cl_status 0
	clx "$PM" ps -a --format '{{.Names}}'
	cl_eq "$output" k1 "containers left after rm -f k2"
	cl_wait 5 cl_pid_dead "$pid" || cl_fail "k2's process $pid survived rm -f"
	cl_wait 10 cl_no_pids_matching "$id" || cl_fail "processes for $id left: $(cl_pids_matching "$id")"
	cl_assert_no_cgroup "$id"
}

@test "podman: a limit the host's cgroup v2 cannot apply is refused clearly" {
	cl_root_only "rootless podman on this host sends no cgroup limits to the runtime"
	local controllers=""
	for f in /sys/fs/cgroup/cgroup.controllers /sys/fs/cgroup/unified/cgroup.controllers; do
		[[ -f $f ]] && { controllers=$(cat "$f"); break; }
	done
	[[ " $controllers " != *" pids "* ]] || skip "this host's cgroup v2 has the pids controller"
	cl_pm_init
	clx "$PM" run --rm --pids-limit 100 "$CL_IMAGE" true
	[[ $status -ne 0 ]] || cl_fail "a pids limit was accepted on a host without the v2 pids controller"
	[[ $stderr == *'"pids" controller'* ]] || cl_fail "error does not name the pids controller: $stderr"
	clx "$PM" ps -aq
	[[ -z $output ]] || cl_fail "a refused container was left behind: $output"
}

# ============================================================= containerd

@test "ctr: run --rm prints output and returns the exit code" {
	cl_need_ctrd
	local id
	id=$(cl_ctr_id echo)
	# shellcheck disable=SC2046
	clx "$CL_CTRD/ctr" run $(cl_ctr_run_args) --rm "$CL_IMAGE" "$id" echo hello from berth
	cl_status 0
	cl_eq "$output" "hello from berth" "stdout"
	id=$(cl_ctr_id exit3)
	# shellcheck disable=SC2046
	clx "$CL_CTRD/ctr" run $(cl_ctr_run_args) --rm "$CL_IMAGE" "$id" sh -c 'echo err >&2; exit 3'
	cl_status 3
	cl_has err "$stderr"
	cl_assert_ctr_gone "$id" ""
}

@test "ctr: run --rm -t gives the task a terminal" {
	cl_need_ctrd
	command -v script >/dev/null || skip "ctr -t needs a terminal on stdin and util-linux 'script' is not installed"
	local id
	id=$(cl_ctr_id tty)
	clx script -qec "$CL_CTRD/ctr run $(cl_ctr_run_args) --rm -t $CL_IMAGE $id sh -c 'tty; exit 2'" /dev/null
	cl_status 2
	[[ $output =~ /dev/pts/[0-9]+ ]] || cl_fail "tty printed '$output'"
}

@test "ctr: run -d, then task exec (output, exit code, -t) and task ps" {
	cl_need_ctrd
	local id pid
	id=$(cl_ctr_id exec)
	# shellcheck disable=SC2046
	clx "$CL_CTRD/ctr" run $(cl_ctr_run_args) -d "$CL_IMAGE" "$id" sleep 1000
	cl_status 0
	cl_wait 10 cl_task_is "$id" RUNNING || cl_fail "task is $(cl_task_status "$id"), not RUNNING"
	pid=$(cl_task_pid "$id")

	clx "$CL_CTRD/ctr" task exec --fifo-dir "$CL_CTRD/fifo" --exec-id e1 "$id" echo hi
	cl_status 0
	cl_eq "$output" hi "task exec stdout"

	clx "$CL_CTRD/ctr" task exec --fifo-dir "$CL_CTRD/fifo" --exec-id e2 "$id" sh -c 'echo $$; ps -o pid,args; exit 4'
	cl_status 4
	[[ $output =~ (^|$'\n')\ *1\ sleep\ 1000 ]] || cl_fail "task exec does not see the task's PID 1:
$output"

	clx "$CL_CTRD/ctr" task exec --fifo-dir "$CL_CTRD/fifo" --cwd /tmp --exec-id e3 "$id" pwd
	cl_status 0
	cl_eq "$output" /tmp "task exec --cwd"

	if command -v script >/dev/null; then
		clx script -qec "$CL_CTRD/ctr task exec --fifo-dir $CL_CTRD/fifo -t --exec-id e4 $id tty" /dev/null
		cl_status 0
		[[ $output =~ /dev/pts/[0-9]+ ]] || cl_fail "task exec -t: tty printed '$output'"
	fi

	clx "$CL_CTRD/ctr" task ps "$id"
	cl_status 0
	cl_has "$pid"

	cl_task_is "$id" RUNNING || cl_fail "task stopped during the exec calls"
}

@test "ctr: task kill stops the task and task delete leaves nothing behind" {
	cl_need_ctrd
	local id pid
	id=$(cl_ctr_id kill)
	# shellcheck disable=SC2046
	clx "$CL_CTRD/ctr" run $(cl_ctr_run_args) -d "$CL_IMAGE" "$id" sh -c 'trap "exit 7" TERM; while :; do sleep 0.1; done'
	cl_status 0
	cl_wait 10 cl_task_is "$id" RUNNING || cl_fail "task is $(cl_task_status "$id"), not RUNNING"
	pid=$(cl_task_pid "$id")
	sleep 0.5 # let sh install its trap

	clx "$CL_CTRD/ctr" task kill "$id" # SIGTERM
	cl_status 0
	cl_wait 10 cl_task_is "$id" STOPPED || cl_fail "task is $(cl_task_status "$id") after SIGTERM"
	clx "$CL_CTRD/ctr" task delete "$id"
	cl_status 0
	cl_has "exit code 7" "$output$stderr"
	clx "$CL_CTRD/ctr" container rm "$id"
	cl_status 0
	cl_assert_ctr_gone "$id" "$pid"
}

@test "ctr: SIGKILL, kill --all and delete -f on running tasks leave nothing behind" {
	cl_need_ctrd
	local id pid
	id=$(cl_ctr_id sigkill)
	# shellcheck disable=SC2046
	clx "$CL_CTRD/ctr" run $(cl_ctr_run_args) -d "$CL_IMAGE" "$id" sleep 1000
	cl_status 0
	cl_wait 10 cl_task_is "$id" RUNNING || cl_fail "task is not RUNNING"
	pid=$(cl_task_pid "$id")
	clx "$CL_CTRD/ctr" task kill -s SIGKILL "$id"
	cl_status 0
	cl_wait 10 cl_task_is "$id" STOPPED || cl_fail "task is $(cl_task_status "$id") after SIGKILL"
	clx "$CL_CTRD/ctr" task delete "$id"
	cl_status 0
	cl_has "exit code 137" "$output$stderr"
	clx "$CL_CTRD/ctr" container rm "$id"
	cl_status 0
	cl_assert_ctr_gone "$id" "$pid"

	id=$(cl_ctr_id killall)
	# shellcheck disable=SC2046
	clx "$CL_CTRD/ctr" run $(cl_ctr_run_args) -d "$CL_IMAGE" "$id" sh -c 'sleep 1000 & sleep 1000'
	cl_status 0
	cl_wait 10 cl_task_is "$id" RUNNING || cl_fail "task is not RUNNING"
	pid=$(cl_task_pid "$id")
	clx "$CL_CTRD/ctr" task kill -a -s SIGKILL "$id"
	cl_status 0
	cl_wait 10 cl_task_is "$id" STOPPED || cl_fail "task is $(cl_task_status "$id") after kill --all"
	clx "$CL_CTRD/ctr" task delete "$id"
	cl_status 0
	clx "$CL_CTRD/ctr" container rm "$id"
	cl_status 0
	cl_assert_ctr_gone "$id" "$pid"

	id=$(cl_ctr_id forcedel)
	# shellcheck disable=SC2046
	clx "$CL_CTRD/ctr" run $(cl_ctr_run_args) -d "$CL_IMAGE" "$id" sleep 1000
	cl_status 0
	cl_wait 10 cl_task_is "$id" RUNNING || cl_fail "task is not RUNNING"
	pid=$(cl_task_pid "$id")
	clx "$CL_CTRD/ctr" task delete -f "$id"
	cl_status 0
	clx "$CL_CTRD/ctr" container rm "$id"
	cl_status 0
	cl_assert_ctr_gone "$id" "$pid"
}

@test "ctr: a failing create reports the runtime's error message" {
	cl_need_ctrd
	local id
	id=$(cl_ctr_id nocmd)
	# shellcheck disable=SC2046
	clx "$CL_CTRD/ctr" run $(cl_ctr_run_args) --rm "$CL_IMAGE" "$id" /nonexistent
	[[ $status != 0 ]] || cl_fail "ctr run of a missing command succeeded"
	cl_has "OCI runtime create failed" "$stderr"
	cl_has /nonexistent "$stderr"
	[[ $stderr != *"unable to retrieve OCI runtime error"* ]] ||
		cl_fail "containerd could not parse the runtime's --log file: $stderr"
	clx "$CL_CTRD/ctr" container rm "$id"
	cl_assert_ctr_gone "$id" ""
}
