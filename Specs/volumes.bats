#!/usr/bin/env bats
# Specs/volumes.md, end to end: named and anonymous volumes, copy-up, bind
# mounts, tmpfs, and the volume commands, as root and as an unprivileged
# user (BERTH_AS). Each test has its own store and runtime state (engine_setup).
bats_require_minimum_version 1.5.0
load helpers

setup_file() { engine_setup_file; }
setup() { engine_setup; }
teardown() { engine_teardown; }

# data_image NAME [IMPORT-FLAG...] — busybox plus /data/hello ("hello",
# owned by 1000:1000, like /data itself) and /data/sub/deep, as image NAME.
data_image() {
	local name=$1 dir="$BATS_TEST_TMPDIR/img" tarball="$BATS_TEST_TMPDIR/img.tar"
	shift
	mkdir -p "$dir/data/sub"
	echo hello >"$dir/data/hello"
	echo deep >"$dir/data/sub/deep"
	tar -C "$BERTH_ROOTFS" -cf "$tarball" .
	tar -C "$dir" --owner=1000 --group=1000 -rf "$tarball" data
	e import -q -c 'CMD ["sh"]' "$@" "$tarball" "$name" >/dev/null || fail "cannot import $tarball as $name"
}

volume_names() { e volume ls -q | tr '\n' ' '; }

@test "volume create, ls, inspect, exists: given and generated names, options, labels" {
	run e volume create data
	assert_status 0
	assert_eq "$output" "data"
	run e volume create
	assert_status 0
	[[ $output =~ ^[0-9a-f]{64}$ ]] || fail "generated name: $output"
	generated=$output
	run e volume create -o type=tmpfs -o device=tmpfs -o o=size=64m --label app=web --label tier= fast
	assert_eq "$output" "fast"

	run e volume ls
	assert_status 0
	assert_eq "${lines[0]}" "DRIVER  VOLUME NAME"
	assert_eq "${#lines[@]}" 4
	# Sorted by name (byte order; the generated name may sort anywhere).
	mapfile -t sorted < <(printf '%s\n' "$generated" data fast | LC_ALL=C sort)
	for i in 0 1 2; do
		[[ ${lines[i + 1]} =~ ^local\ +${sorted[i]}$ ]] || fail "row $((i + 1)): ${lines[i + 1]} (want ${sorted[i]})"
	done
	run e volume ls -q
	assert_eq "$output" "$(printf '%s\n' "${sorted[@]}")"

	run e volume inspect fast
	assert_status 0
	assert_eq "$(jq -r 'length' <<<"$output")" 1
	assert_eq "$(jq -r '.[0] | [.Name, .Driver, .Scope, .Anonymous] | join(" ")' <<<"$output")" "fast local local false"
	assert_eq "$(jq -c '.[0].Options' <<<"$output")" '{"device":"tmpfs","o":"size=64m","type":"tmpfs"}'
	assert_eq "$(jq -c '.[0].Labels' <<<"$output")" '{"app":"web","tier":""}'
	assert_eq "$(jq -r '.[0].Mountpoint' <<<"$output")" "$STATE/volumes/fast/_data"
	[[ $(jq -r '.[0].CreatedAt' <<<"$output") =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$ ]] || fail "CreatedAt: $output"
	run e volume inspect --format '{{.Name}} {{.Mountpoint}}' data "$generated"
	assert_eq "${lines[0]}" "data $STATE/volumes/data/_data"
	assert_eq "${lines[1]}" "$generated $STATE/volumes/$generated/_data"
	[[ -d $STATE/volumes/data/_data ]] || fail "no data directory"

	run e volume exists data
	assert_status 0
	run e volume exists nosuch
	assert_status 1
	assert_eq "$output" ""
}

@test "volume create: invalid names, unknown driver and options, an existing name; --ignore" {
	run --separate-stderr e volume create 'bad/name'
	assert_status 125
	assert_fails_with 'invalid volume name "bad/name"'
	run --separate-stderr e volume create _under
	assert_status 125
	assert_fails_with 'invalid volume name "_under"'
	run --separate-stderr e volume create --driver nfs v
	assert_status 125
	assert_fails_with 'volume driver "nfs" is not supported'
	run --separate-stderr e volume create -o size=1m v
	assert_status 125
	assert_fails_with 'invalid volume option "size": the local driver accepts type, device and o'
	run --separate-stderr e volume create -o type=nfs v
	assert_status 125
	assert_fails_with 'volume type "nfs" is not supported'
	run --separate-stderr e volume create -o o=size=1m v
	assert_status 125
	assert_fails_with 'volume options device and o need a type (-o type=tmpfs)'
	run --separate-stderr e volume create -o type=tmpfs -o device=/dev/sda v
	assert_status 125
	assert_fails_with 'a tmpfs volume'"'"'s device must be "tmpfs"'
	run --separate-stderr e volume create -o novalue v
	assert_status 125
	assert_fails_with '-o "novalue": expected KEY=VALUE'
	run --separate-stderr e volume create -o =x v
	assert_status 125
	assert_fails_with '-o "=x": expected KEY=VALUE'
	# None of those made anything.
	assert_eq "$(volume_names)" ""

	e volume create --label k=1 v >/dev/null
	run --separate-stderr e volume create v
	assert_status 125
	assert_fails_with 'volume "v" already exists'
	run e volume create --ignore --label k=2 v
	assert_status 0
	assert_eq "$output" "v"
	run e volume inspect --format '{{.Labels.k}}' v
	assert_eq "$output" "1"
	# -v with an invalid name is refused too, and creates nothing.
	run --separate-stderr e run --rm -v 'a@b:/x' busybox true
	assert_status 125
	assert_fails_with 'invalid volume name "a@b"'
	assert_eq "$(volume_names)" "v "
}

@test "-v NAME:/path creates the volume on first use; its data persists across containers; rm -v keeps named volumes" {
	run e run --name writer -v store:/data busybox sh -c 'echo kept > /data/file'
	assert_status 0
	assert_eq "$(volume_names)" "store "
	run e inspect --format '{{json .Mounts}}' writer
	assert_eq "$(jq -r '.[0] | [.Type, .Name, .Destination, .Source, (.RW | tostring)] | join(" ")' <<<"$output")" \
		"volume store /data $STATE/volumes/store/_data true"
	run e run --rm -v store:/other busybox cat /other/file
	assert_status 0
	assert_eq "$output" "kept"
	# Read-only: the data is there, writes fail.
	run e run --rm -v store:/data:ro busybox sh -c 'cat /data/file; echo x > /data/new'
	assert_status 1
	assert_contains "$output" "kept"
	assert_contains "$output" "Read-only file system"
	# Named volumes outlive rm -v and run --rm.
	e rm -v writer >/dev/null
	e run --rm -v store:/data busybox true
	assert_eq "$(volume_names)" "store "
	run e run --rm -v store:/data busybox cat /data/file
	assert_eq "$output" "kept"
}

@test "copy-up: a new volume gets the image's content at its path; a non-empty one is kept; nocopy skips it" {
	data_image withdata
	run e run --rm -v fresh:/data withdata sh -c 'cat /data/hello /data/sub/deep; stat -c "%u:%g %n" /data /data/hello'
	assert_status 0
	assert_eq "$output" $'hello\ndeep\n1000:1000 /data\n1000:1000 /data/hello'
	# It is the volume's data now: changed in one container, seen in the next.
	e run --rm -v fresh:/data withdata sh -c 'echo changed > /data/hello; rm /data/sub/deep'
	run e run --rm -v fresh:/data withdata sh -c 'cat /data/hello; ls /data/sub'
	assert_eq "$output" "changed"

	# A volume that already has content is never overwritten.
	e run --rm -v full:/x busybox sh -c 'echo mine > /x/own' >/dev/null
	run e run --rm -v full:/data withdata ls /data
	assert_eq "$output" "own"

	# nocopy (-v …:nocopy, --mount …,volume-nocopy): the volume stays empty.
	run e run --rm -v empty1:/data:nocopy withdata ls -A /data
	assert_status 0
	assert_eq "$output" ""
	run e run --rm --mount type=volume,source=empty2,target=/data,volume-nocopy withdata ls -A /data
	assert_status 0
	assert_eq "$output" ""
	# A path the image does not have: an empty volume, and the path exists.
	run e run --rm -v empty3:/nowhere withdata ls -A /nowhere
	assert_status 0
	assert_eq "$output" ""
}

@test "anonymous volumes (-v /path, the image's VOLUME): kept by rm, removed by rm -v and run --rm" {
	data_image withvolume -c 'VOLUME /data'
	# The image's VOLUME becomes an anonymous volume, filled from the image.
	run e run --name a1 withvolume sh -c 'cat /data/hello; echo more > /data/more'
	assert_status 0
	assert_eq "$output" "hello"
	run e inspect --format '{{json .Mounts}}' a1
	name=$(jq -r '.[0].Name' <<<"$output")
	[[ $name =~ ^[0-9a-f]{64}$ ]] || fail "anonymous volume name: $output"
	assert_eq "$(jq -r '.[0].Destination' <<<"$output")" "/data"
	run e volume inspect --format '{{.Anonymous}}' "$name"
	assert_eq "$output" "true"
	# Every container gets a fresh one.
	run e run --name a2 withvolume sh -c 'ls /data/more 2>&1; cat /data/hello'
	assert_eq "$output" $'ls: /data/more: No such file or directory\nhello'
	assert_eq "$(e volume ls -q | wc -l)" 2
	# rm keeps it (as podman and docker do), rm -v removes it.
	e rm a1 >/dev/null
	run e volume exists "$name"
	assert_status 0
	e rm -v a2 >/dev/null
	assert_eq "$(volume_names)" "$name "
	e volume rm "$name" >/dev/null

	# -v /path: the same, without the image's content when it has none there.
	e run --name a3 -v /scratch busybox sh -c 'echo x > /scratch/f' >/dev/null
	assert_eq "$(e volume ls -q | wc -l)" 1
	e rm -v a3 >/dev/null
	assert_eq "$(volume_names)" ""
	# run --rm removes its anonymous volumes, but not the named ones.
	run e run --rm -v /scratch -v named:/named withvolume sh -c 'cat /data/hello; touch /scratch/f /named/f'
	assert_status 0
	assert_eq "$output" "hello"
	assert_eq "$(volume_names)" "named "
	# A detached run --rm too, when the container exits.
	e run -d --rm --name gone -v /scratch busybox true >/dev/null
	wait_until 10 bash -c "! \"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" inspect gone >/dev/null 2>&1"
	assert_eq "$(volume_names)" "named "
	# -v on a path the image declares as VOLUME replaces that anonymous volume.
	e run --rm -v named:/data withvolume true
	assert_eq "$(volume_names)" "named "
}

@test "volume rm: refused while any container uses the volume; -f removes those containers first" {
	e create --name created -v v1:/v busybox true >/dev/null
	e run --name exited -v v2:/v busybox true >/dev/null
	e run -d --name running -v v3:/v busybox sleep 1000 >/dev/null
	for pair in created:v1 exited:v2 running:v3; do
		id=$(e inspect --format '{{.Id}}' "${pair%%:*}")
		run --separate-stderr e volume rm "${pair#*:}"
		assert_status 125
		assert_fails_with "volume \"${pair#*:}\" is in use by container(s) ${id:0:12}"
	done
	assert_eq "$(volume_names)" "v1 v2 v3 "
	# One volume used by two containers names both.
	e create --name second -v v1:/w busybox true >/dev/null
	run --separate-stderr e volume rm v1
	assert_status 125
	assert_contains "$stderr" "$(e inspect --format '{{.Id}}' created | cut -c1-12)"
	assert_contains "$stderr" "$(e inspect --format '{{.Id}}' second | cut -c1-12)"

	pid=$(e inspect --format '{{.State.Pid}}' running)
	run e volume rm -f v1 v3
	assert_status 0
	assert_eq "$output" $'v1\nv3'
	wait_until 10 pid_dead "$pid" || fail "the container of v3 still runs"
	run e ps -a --format '{{.Names}}'
	assert_eq "$output" "exited"
	assert_eq "$(volume_names)" "v2 "
	e rm exited >/dev/null
	run e volume rm v2
	assert_status 0
	assert_eq "$output" "v2"
	[[ ! -e $STATE/volumes/v2 ]] || fail "volume directory left: $(ls -la "$STATE/volumes/v2")"

	# A missing volume: an error, but not with -f.
	run --separate-stderr e volume rm nosuch
	assert_status 125
	assert_fails_with 'no such volume "nosuch"'
	run e volume rm -f nosuch
	assert_status 0
	assert_eq "$output" ""
}

@test "volume rm removes what containers made as other users (rootless: through the user namespace)" {
	e run --rm -v mixed:/v busybox sh -c 'mkdir -p /v/a/b && echo x > /v/a/b/f && chown -R 1000:1000 /v/a && chmod 700 /v/a /v/a/b' >/dev/null
	run e volume rm mixed
	assert_status 0
	assert_eq "$output" "mixed"
	[[ ! -e $STATE/volumes/mixed ]] || fail "volume left"
	assert_eq "$(ls -A "$STATE/tmp" 2>/dev/null)" "" "store tmp/"
}

@test "volume prune: removes every volume no container uses, prints their names" {
	e volume create unused1 >/dev/null
	e volume create unused2 >/dev/null
	e create --name keep -v used:/u busybox true >/dev/null
	e run --name anon -v /scratch busybox true >/dev/null
	anon=$(e inspect --format '{{json .Mounts}}' anon | jq -r '.[0].Name')
	run e volume ls -q -f dangling=true
	assert_eq "$output" $'unused1\nunused2'
	run e volume ls -q -f dangling=false
	assert_eq "$(sort <<<"$output" | tr '\n' ' ')" "$(printf '%s\n' "$anon" used | sort | tr '\n' ' ')"
	run e volume prune -f
	assert_status 0
	assert_eq "$output" $'unused1\nunused2'
	assert_eq "$(volume_names | tr ' ' '\n' | sort | tr '\n' ' ')" "$(printf '%s\n' "$anon" used | sort | tr '\n' ' ')"
	e rm anon keep >/dev/null
	run e volume prune
	assert_eq "$(sort <<<"$output" | tr '\n' ' ')" "$(printf '%s\n' "$anon" used | sort | tr '\n' ' ')"
	assert_eq "$(volume_names)" ""
	run e volume prune
	assert_status 0
	assert_eq "$output" ""
}

@test "volume ls: filters, formats, nothing at all when there is no volume" {
	run e volume ls
	assert_status 0
	assert_eq "$output" ""
	run e volume ls --format json
	assert_eq "$output" "[]"
	e volume create --label env=prod --label team=a web >/dev/null
	e volume create --label env=dev db >/dev/null
	e volume create cache >/dev/null
	run e volume ls -q -f label=env
	assert_eq "$output" $'db\nweb'
	run e volume ls -q -f label=env=prod
	assert_eq "$output" "web"
	run e volume ls -q -f name=c
	assert_eq "$output" "cache"
	# Values of one key are alternatives; different keys must all match.
	run e volume ls -q -f name=web -f name=db
	assert_eq "$output" $'db\nweb'
	run e volume ls -q -f name=web -f label=env=dev
	assert_eq "$output" ""
	run e volume ls -q -f driver=local
	assert_eq "$(wc -l <<<"$output")" 3
	run e volume ls --format '{{.Name}}={{.Driver}}' -f name=cache
	assert_eq "$output" "cache=local"
	run e volume ls --format 'table {{.Name}}\t{{.Mountpoint}}' -f name=db
	assert_eq "${lines[0]}" "VOLUME NAME  MOUNTPOINT"
	assert_eq "${lines[1]}" "db           $STATE/volumes/db/_data"
	run e volume ls --format json -f name=web
	assert_eq "$(jq -c '[.[] | .Name, .Labels]' <<<"$output")" '["web",{"env":"prod","team":"a"}]'
	run --separate-stderr e volume ls -f colour=red
	assert_status 125
	assert_fails_with '--filter "colour=red": berth filters volumes by name, label, driver and dangling'
	run --separate-stderr e volume ls -f dangling=maybe
	assert_status 125
	assert_fails_with 'dangling takes true or false'
	run --separate-stderr e volume ls --format '{{.Nope}}'
	assert_status 125
	assert_fails_with "can't evaluate field Nope"
}

@test "volume inspect: a missing volume is an error after the others are shown" {
	e volume create here >/dev/null
	run --separate-stderr e volume inspect here nosuch
	assert_status 125
	assert_eq "$(jq -r '.[].Name' <<<"$output")" "here"
	assert_fails_with 'no such volume "nosuch"'
	run --separate-stderr e volume inspect nosuch
	assert_status 125
	assert_eq "$output" ""
	run --separate-stderr e volume inspect
	assert_status 125
	assert_fails_with 'give at least one volume, or --all'
	run e volume inspect --all --format '{{.Name}}'
	assert_eq "$output" "here"
}

@test "bind mounts: rw writes land on the host, ro refuses writes, z/Z accepted, ./relative sources" {
	host="$BATS_TEST_TMPDIR/host"
	mkdir -p "$host"
	echo original >"$host/file"
	run e run --rm -v "$host:/h" busybox sh -c 'cat /h/file; echo from-container > /h/new'
	assert_status 0
	assert_eq "$output" "original"
	assert_eq "$(cat "$host/new")" "from-container"
	# Changes on the host are seen inside at once (the same directory, no copy).
	run e run --rm -v "$host:/h:rw" busybox cat /h/new
	assert_eq "$output" "from-container"

	run e run --rm -v "$host:/h:ro" busybox sh -c 'cat /h/file; echo x > /h/file'
	assert_status 1
	assert_contains "$output" "original"
	assert_contains "$output" "Read-only file system"
	assert_eq "$(cat "$host/file")" "original"
	run e run --rm --mount "type=bind,source=$host,target=/h,readonly" busybox sh -c 'touch /h/x'
	assert_status 1
	assert_contains "$output" "Read-only file system"
	[[ ! -e $host/x ]] || fail "a read-only bind was written"

	# z and Z (SELinux relabelling) are accepted and change nothing here.
	run e run --rm -v "$host:/h:z" -v "$host:/k:Z,ro" busybox sh -c 'cat /h/file /k/file'
	assert_status 0
	assert_eq "$output" $'original\noriginal'
	# A single file can be bound too.
	run e run --rm -v "$host/file:/etc/motd:ro" busybox cat /etc/motd
	assert_eq "$output" "original"
	# ./ and ../ sources are relative to the working directory.
	run bash -c "cd \"$host\" && \"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" run --rm -v ./:/h busybox cat /h/file <\"$BERTH_EMPTY\""
	assert_status 0
	assert_eq "$output" "original"
	# A bind is not a volume: nothing appears in volume ls.
	assert_eq "$(volume_names)" ""
}

@test "bind mounts: U gives the source to the container's user" {
	host="$BATS_TEST_TMPDIR/owned"
	mkdir -p "$host/sub"
	chmod 755 "$host"
	# Rootless, the files end up owned by a subordinate id: removed from the user namespace.
	[[ $BERTH_AS == root ]] || berth_defer "$BERTH" unshare rm -rf -- "$host"
	echo x >"$host/sub/file"
	# Without U the container's user 1000 cannot write there.
	run e run --rm -u 1000 -v "$host:/h" busybox sh -c 'touch /h/new'
	assert_status 1
	assert_contains "$output" "Permission denied"
	run e run --rm -u 1000:1000 -v "$host:/h:U" busybox sh -c 'stat -c "%u:%g %n" /h /h/sub /h/sub/file; touch /h/new && echo wrote'
	assert_status 0
	assert_eq "$output" $'1000:1000 /h\n1000:1000 /h/sub\n1000:1000 /h/sub/file\nwrote'
	if [[ $BERTH_AS == root ]]; then
		assert_eq "$(stat -c %u:%g "$host/sub/file")" "1000:1000" "host owner"
	else
		# Rootless: the container's 1000 is a subordinate id on the host.
		[[ $(stat -c %u "$host/sub/file") != "$(id -u)" ]] || fail "still owned by $(id -u)"
	fi
}

@test "missing bind sources are refused before anything is made" {
	run --separate-stderr e run --rm -v /scratch -v named:/n -v "$BATS_TEST_TMPDIR/missing:/m" busybox true
	assert_status 125
	assert_fails_with "bind mount source \"$BATS_TEST_TMPDIR/missing\" does not exist on the host"
	run --separate-stderr e run --rm --mount "type=bind,source=$BATS_TEST_TMPDIR/missing,target=/m" busybox true
	assert_status 125
	assert_fails_with "bind mount source \"$BATS_TEST_TMPDIR/missing\" does not exist on the host"
	# No volume, no container.
	assert_eq "$(volume_names)" ""
	run e ps -a -q
	assert_eq "$output" ""
}

@test "tmpfs: a tmpfs volume, --tmpfs and --mount type=tmpfs are tmpfs inside; each container has its own" {
	e volume create -o type=tmpfs -o device=tmpfs -o o=size=64m mem >/dev/null
	run e run --rm -v mem:/t --tmpfs /x:size=1m --mount type=tmpfs,target=/y,tmpfs-size=2m,tmpfs-mode=700 \
		busybox sh -c 'for d in /t /x /y; do grep " $d " /proc/mounts; done; stat -c "%a %n" /y; echo hi > /t/f; echo hi > /x/f'
	assert_status 0
	[[ ${lines[0]} =~ ^tmpfs\ /t\ tmpfs\ rw,.*size=65536k ]] || fail "/t: ${lines[0]}"
	[[ ${lines[1]} =~ ^tmpfs\ /x\ tmpfs\ rw,.*size=1024k ]] || fail "/x: ${lines[1]}"
	[[ ${lines[2]} =~ ^tmpfs\ /y\ tmpfs\ rw,.*size=2048k ]] || fail "/y: ${lines[2]}"
	assert_eq "${lines[3]}" "700 /y"
	# The data lives in the container's tmpfs, not in the volume's directory.
	assert_eq "$(ls -A "$STATE/volumes/mem/_data")" ""
	run e run --rm -v mem:/t busybox ls -A /t
	assert_eq "$output" ""
	# A plain volume is not a tmpfs.
	run e run --rm -v plain:/p busybox sh -c 'grep -c " /p tmpfs " /proc/mounts'
	assert_eq "$output" "0"
	run e run --rm --tmpfs /r:ro busybox sh -c 'grep " /r " /proc/mounts; touch /r/x'
	assert_status 1
	[[ ${lines[0]} =~ ^tmpfs\ /r\ tmpfs\ ro, ]] || fail "/r: ${lines[0]}"
}

@test "--mount type=volume: named and anonymous volumes, readonly" {
	run e run --name m -v keep:/k --mount type=volume,source=named,target=/n --mount type=volume,target=/anon \
		busybox sh -c 'echo 1 > /n/f; echo 2 > /anon/f; echo ok'
	assert_status 0
	assert_eq "$output" "ok"
	run e inspect --format '{{json .Mounts}}' m
	assert_eq "$(jq -r '[.[] | .Destination + "=" + (if .Name == "named" or .Name == "keep" then .Name else "anon" end)] | join(" ")' <<<"$output")" \
		"/k=keep /n=named /anon=anon"
	run e run --rm --mount type=volume,src=named,dst=/n,readonly busybox sh -c 'cat /n/f; touch /n/g'
	assert_status 1
	assert_contains "$output" "1"
	assert_contains "$output" "Read-only file system"
	e rm -v m >/dev/null
	assert_eq "$(volume_names)" "keep named "
}

@test "mount flag errors: one line, exit 125, nothing made" {
	for flags in "-v x:/y:bogus|unknown option \"bogus\"" \
		"-v x:/y:ro,rw|ro and rw conflict" \
		"-v x:y|the container path \"y\" must be absolute" \
		"-v relative|the container path must be absolute" \
		"-v a:/same -v b:/same|/same is mounted twice" \
		"--mount type=nfs,target=/x|type must be bind, volume or tmpfs" \
		"--mount type=bind,target=/x|a bind needs source=HOST-PATH" \
		"--mount type=volume,source=v|target=ABSOLUTE-PATH is required" \
		"--mount type=tmpfs,target=/t,tmpfs-size=big|tmpfs-size \"big\" is not a size" \
		"--tmpfs relative|--tmpfs \"relative\": expected an absolute container path"; do
		# shellcheck disable=SC2086
		run --separate-stderr e run --rm ${flags%%|*} busybox true
		assert_status 125
		assert_fails_with "${flags#*|}"
	done
	assert_eq "$(volume_names)" ""
	run e ps -a -q
	assert_eq "$output" ""
}

# tree_state DIR — every path under DIR with its size, mode, owner and
# modification time, then a checksum of every file: equal before and after
# means DIR was not changed.
tree_state() {
	(cd "$1" && find . -printf '%p %s %m %U:%G %T@\n' | LC_ALL=C sort &&
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}

@test "overlay volumes (-v DIR:/path:O): the container changes what it sees, the host directory never changes" {
	host="$BATS_TEST_TMPDIR/workspace"
	mkdir -p "$host/sub"
	echo keep >"$host/keep"
	echo edit >"$host/edit"
	echo gone >"$host/gone"
	echo deep >"$host/sub/deep"
	chmod 750 "$host/sub"
	before=$(tree_state "$host")
	run e run --name ov -v "$host:/work:O" busybox sh -c '
		cd /work && ls -A && cat keep sub/deep && stat -c "%a %n" sub
		echo new > new && echo changed >> edit && rm gone && rm -r sub && mkdir made && echo x > made/f && chmod 600 keep
		echo --- && ls -A && cat new edit made/f && stat -c "%a %n" keep && grep " /work " /proc/mounts | cut -d" " -f3'
	assert_status 0
	assert_eq "$output" $'edit\ngone\nkeep\nsub\nkeep\ndeep\n750 sub\n---\nedit\nkeep\nmade\nnew\nnew\nedit\nchanged\nx\n600 keep\noverlay'
	# Byte for byte, mode for mode, what it was.
	assert_eq "$(tree_state "$host")" "$before" "the host directory"
	# Nothing mounted is left: no mount point here, no overlay on the host directory.
	assert_eq "$(mounts_under "$BATS_TEST_TMPDIR")" "" "mounts"
	run grep -F "lowerdir=$host" /proc/self/mountinfo
	assert_status 1
	run e inspect --format '{{json .Mounts}}' ov
	assert_eq "$(jq -r '.[0] | [.Type, .Source, .Destination, (.RW | tostring)] | join(" ")' <<<"$output")" \
		"overlay $host /work true"
	# Not a volume: nothing in volume ls.
	assert_eq "$(volume_names)" ""
}

@test "overlay volumes: each start of the container begins from the host directory again" {
	host="$BATS_TEST_TMPDIR/workspace"
	mkdir -p "$host"
	echo original >"$host/file"
	before=$(tree_state "$host")
	# What it writes includes files of another user (rootless: a subordinate id the user cannot remove).
	run e run --name again -v "$host:/work:O" busybox sh -c 'cat /work/file; echo changed > /work/file
		mkdir -p /work/other/deep && echo x > /work/other/deep/f && chown -R 1000:1000 /work/other && chmod 700 /work/other /work/other/deep'
	assert_status 0
	assert_eq "$output" "original"
	id=$(e inspect --format '{{.Id}}' again)
	[[ -n $(ls -A "$STATE/containers/$id/overlay/0/upper") ]] || fail "the changes are not in the container's upper directory"
	run e start -a again
	assert_status 0
	assert_eq "$output" "original"
	# Detached too: the start resets it, whoever runs the container.
	e start again >/dev/null
	run e wait again
	assert_eq "$output" "0"
	run e logs again
	assert_eq "$output" $'original\noriginal\noriginal'
	assert_eq "$(tree_state "$host")" "$before" "the host directory"
	run e rm again
	assert_status 0
	[[ ! -e $STATE/containers/$id ]] || fail "container directory left: $(ls -la "$STATE/containers/$id")"
	assert_eq "$(ls -A "$STATE/tmp" 2>/dev/null)" "" "store tmp/"
}

@test "overlay volume errors: a named volume, ro, U, propagation, a missing source; one line, exit 125, nothing made" {
	host="$BATS_TEST_TMPDIR/workspace"
	mkdir -p "$host"
	touch "$BATS_TEST_TMPDIR/plain"
	for flags in "-v data:/work:O|-v \"data:/work:O\": O (an overlay volume) needs a host directory as SOURCE, not the volume \"data\"" \
		"-v $host:/work:O,ro|-v \"$host:/work:O,ro\": O and ro conflict: an overlay volume is writable, its changes are discarded" \
		"-v $host:/work:O,U|O cannot be combined with \"U\"" \
		"-v $host:/work:O,rshared|O cannot be combined with \"rshared\"" \
		"-v $BATS_TEST_TMPDIR/a,b:/work:O|cannot contain ',', ':'" \
		"-v $BATS_TEST_TMPDIR/missing:/work:O|overlay volume source \"$BATS_TEST_TMPDIR/missing\" is not a directory on the host" \
		"-v $BATS_TEST_TMPDIR/plain:/work:O|overlay volume source \"$BATS_TEST_TMPDIR/plain\" is not a directory on the host"; do
		# shellcheck disable=SC2086
		run --separate-stderr e run --rm -v /scratch ${flags%%|*} busybox true
		assert_status 125
		assert_fails_with "${flags#*|}"
		[[ ${stderr_lines[0]} == "berth: "* ]] || fail "not a berth: line: ${stderr_lines[0]}"
	done
	run --separate-stderr e create -v "$host:/work:O,ro" busybox true
	assert_status 125
	assert_fails_with "O and ro conflict"
	assert_eq "$(volume_names)" ""
	run e ps -a -q
	assert_eq "$output" ""
}
