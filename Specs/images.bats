#!/usr/bin/env bats
# Specs/images.md, end to end: pull/push against a real registry (Debian's
# docker-registry on 127.0.0.1, started by scripts/test with the images of
# scripts/mkimages), the store, secure unpacking and overlay roots.
# Runs as root and as an unprivileged user (BERTH_AS).
bats_require_minimum_version 1.5.0
load helpers

setup_file() { berth_setup_file; }
setup() {
	berth_setup
	[[ -n "${BERTH_TEST_REGISTRY:-}" ]] ||
		skip "BERTH_TEST_REGISTRY is unset (scripts/test starts a registry with scripts/registry and fills it with scripts/mkimages)"
	R=$BERTH_TEST_REGISTRY
	export BERTH_REGISTRIES_CONF="$BATS_TEST_TMPDIR/registries.conf"
	: >"$BERTH_REGISTRIES_CONF"
	export REGISTRY_AUTH_FILE="$BATS_TEST_TMPDIR/auth.json"
}
teardown() {
	# Rootless layers hold files of subordinate ids: remove them from inside
	# the store's user namespace.
	[[ -d "$STATE" ]] && "$BERTH" --root "$STATE" unshare rm -rf "$STATE" 2>/dev/null
	rm -rf "$STATE" 2>/dev/null
	berth_teardown
}

pull() { b pull -q --tls-verify=false "$@"; }
leftovers() { ls -A "$STATE/tmp" 2>/dev/null; }

@test "pull: an OCI image by full name; images lists it with the config digest as ID" {
	run --separate-stderr b pull --tls-verify=false "$R/test/busybox:latest"
	assert_status 0
	want=$(skopeo inspect --tls-verify=false --raw "docker://$R/test/busybox:latest" | jq -r .config.digest)
	assert_eq "$output" "${want#sha256:}"
	assert_contains "$stderr" "Copying blob"
	run b images --format '{{.Repository}}:{{.Tag}} {{.ID}}'
	assert_eq "$output" "$R/test/busybox:latest ${want:7:12}"
	run b images
	assert_contains "${lines[0]}" "REPOSITORY"
	assert_contains "${lines[0]}" "IMAGE ID"
	[[ -z "$(leftovers)" ]] || fail "tmp/ not empty: $(leftovers)"
}

@test "run: a pulled image runs on an overlay of its layers, with its config" {
	pull "$R/test/busybox"
	run b run --rm "$R/test/busybox" sh -c 'echo hello; cat /proc/self/mountinfo | grep " / / "; id -u; pwd'
	assert_status 0
	assert_eq "${lines[0]}" "hello"
	assert_contains "${lines[1]}" "overlay"
	assert_eq "${lines[2]}" "0"
	assert_eq "${lines[3]}" "/"
	# The container's changes stay out of the layers.
	b run --rm "$R/test/busybox" sh -c 'echo x > /bin/new; rm /bin/ls'
	run b run --rm "$R/test/busybox" ls /bin/new
	[[ "$status" -ne 0 ]]
	b run --rm "$R/test/busybox" ls /bin/ls
	# What the container made as another user is removed with it (rootless:
	# those files belong to a subordinate id).
	b run --rm "$R/test/busybox" sh -c 'mkdir /tmp/x && touch /tmp/x/f && chown -R 1000:1000 /tmp/x && chmod 700 /tmp/x'
	assert_eq "$(ls -A "$STATE/containers")" ""
}

@test "pull: Docker schema2, zstd and uncompressed layers give the same files" {
	for tag in docker zstd uncompressed; do
		pull "$R/test/busybox:$tag"
		run b run --rm "$R/test/busybox:$tag" sh -c 'ls /bin | wc -l; cat /etc/passwd | wc -l'
		assert_status 0
		echo "$tag: ${lines[*]}" >>"$BATS_TEST_TMPDIR/counts"
	done
	first=$(head -n1 "$BATS_TEST_TMPDIR/counts" | cut -d: -f2)
	while read -r line; do assert_eq "${line#*:}" "$first"; done <"$BATS_TEST_TMPDIR/counts"
	# The same config: one image with three names, and one unpacked layer.
	run b images -q
	assert_eq "${#lines[@]}" 1
	run b images --format '{{.Tag}}'
	assert_eq "$(sort <<<"$output" | tr '\n' ' ')" "docker uncompressed zstd "
	assert_eq "$(ls "$STATE/layers" | wc -l)" 1
}

@test "pull: an index gives this host's platform; --platform picks another" {
	pull "$R/test/busybox:multi"
	run b image inspect --format '{{.Architecture}}' "$R/test/busybox:multi"
	assert_eq "$output" "amd64"
	run b run --rm "$R/test/busybox:multi" sh -c 'test -e /platform || echo none'
	assert_eq "$output" "none"
	b rmi "$R/test/busybox:multi"
	pull --platform linux/arm64 "$R/test/busybox:multi"
	run b image inspect --format '{{.Architecture}}' "$R/test/busybox:multi"
	assert_eq "$output" "arm64"
	run --separate-stderr b pull -q --tls-verify=false --platform linux/s390x "$R/test/busybox:multi"
	assert_fails_with "no image for platform linux/s390x"
}

@test "layers: whiteouts, opaque directories, hard links, owners, modes survive unpacking" {
	pull "$R/test/layers"
	run b run --rm "$R/test/layers" sh -c '
		ls -A /data | tr "\n" " "; echo
		ls -A /opaque | tr "\n" " "; echo
		stat -c "%i" /data/b /data/b-hardlink | uniq | wc -l
		readlink /data/symlink
		stat -c "%a %u:%g" /data/setuid /data/owned
		cat /opaque/new'
	assert_status 0
	assert_eq "${lines[0]}" "b b-hardlink owned setuid symlink xattr "
	assert_eq "${lines[1]}" "new "
	assert_eq "${lines[2]}" "1"
	assert_eq "${lines[3]}" "b"
	assert_eq "${lines[4]}" "4755 0:0"
	assert_eq "${lines[5]}" "640 1000:1000"
	assert_eq "${lines[6]}" "new"
}

@test "registries.conf: unqualified names use the search list; insecure registries need no flag" {
	cat >"$BERTH_REGISTRIES_CONF" <<-CONF
	unqualified-search-registries = ["$R"]
	[[registry]]
	location = "$R"
	insecure = true
	CONF
	run --separate-stderr b pull -q test/busybox
	assert_status 0
	run b images --format '{{.Repository}}:{{.Tag}}'
	assert_eq "$output" "$R/test/busybox:latest"
	run b run --rm test/busybox echo short-name
	assert_eq "$output" "short-name"
}

@test "registries.conf: a mirror serves a registry; a blocked registry is refused" {
	cat >"$BERTH_REGISTRIES_CONF" <<-CONF
	[[registry]]
	prefix = "registry.invalid"
	location = "registry.invalid"
	[[registry.mirror]]
	location = "$R"
	insecure = true
	[[registry]]
	location = "blocked.invalid"
	blocked = true
	CONF
	run --separate-stderr b pull -q registry.invalid/test/busybox
	assert_status 0
	run b images --format '{{.Repository}}'
	assert_eq "$output" "registry.invalid/test/busybox"
	run --separate-stderr b pull -q blocked.invalid/test/busybox
	assert_fails_with "blocked"
	run --separate-stderr b pull -q 'registries.conf[' 
	assert_fails_with "invalid image reference"
	echo 'unqualified-search-registries = [' >"$BERTH_REGISTRIES_CONF"
	run --separate-stderr b pull -q test/busybox
	assert_fails_with "registries.conf"
}

@test "pull errors: unknown image, unknown tag, unreachable registry, bad reference; nothing left behind" {
	run --separate-stderr b pull -q --tls-verify=false "$R/test/nosuch"
	assert_fails_with "$R/test/nosuch"
	[[ "$status" -eq 125 ]] || fail "exit $status, want 125"
	run --separate-stderr b pull -q --tls-verify=false "$R/test/busybox:nosuchtag"
	assert_fails_with "manifest unknown"
	run --separate-stderr b pull -q --tls-verify=false 127.0.0.1:1/x/y
	assert_fails_with "cannot reach registry 127.0.0.1:1"
	run --separate-stderr b pull -q BadName
	assert_fails_with "invalid image reference"
	run --separate-stderr b pull -q "$R/test/busybox"
	assert_fails_with "$R"
	[[ -z "$(leftovers)" ]] || fail "tmp/ not empty: $(leftovers)"
	assert_eq "$(ls "$STATE/images" 2>/dev/null | wc -l)" 0
}

@test "tag, rmi, image prune: names move, layers go with the last image that needs them" {
	pull "$R/test/busybox"
	b tag "$R/test/busybox" localhost/mine:1 localhost/mine:2
	run b images --format '{{.Repository}}:{{.Tag}}'
	assert_eq "${#lines[@]}" 3
	run b rmi localhost/mine:1
	assert_eq "$output" "Untagged: localhost/mine:1"
	run --separate-stderr b rmi "$R/test/busybox"
	assert_status 0
	run --separate-stderr b rmi localhost/nosuch
	assert_fails_with "image not known"
	run --separate-stderr b rmi -f localhost/mine:2
	assert_status 0
	assert_eq "$(ls "$STATE/layers" | wc -l)" 0
	assert_eq "$(ls "$STATE/blobs/sha256" | wc -l)" 0
	pull "$R/test/busybox"
	b tag "$R/test/busybox" localhost/other
	pull "$R/test/busybox:multi"
	b image prune -a
	assert_eq "$(b images -q | wc -l)" 0
}

@test "push: to a new repository (monolithic and chunked), existing blobs skipped, mounts within a registry" {
	pull "$R/test/busybox"
	repo="$R/pushed/b$$-$RANDOM"
	b tag "$R/test/busybox" "$repo:v1"
	run --separate-stderr b push --tls-verify=false "$repo:v1"
	assert_status 0
	assert_contains "$stderr" "Writing manifest"
	digest=$(skopeo inspect --tls-verify=false --raw "docker://$repo:v1" | sha256sum | cut -d' ' -f1)
	assert_eq "$(b image inspect --format '{{.Digest}}' "$repo:v1")" "sha256:$digest"
	run --separate-stderr b push --tls-verify=false "$repo:v1"
	assert_contains "$stderr" "skipped: already exists"
	run --separate-stderr b push --tls-verify=false --chunk-size 64k "$R/test/busybox" "$repo-chunked:v1"
	assert_status 0
	skopeo inspect --tls-verify=false "docker://$repo-chunked:v1" >/dev/null
	# A pull of what was pushed gives the same image.
	b rmi -a
	pull "$repo-chunked:v1"
	run b run --rm "$repo-chunked:v1" echo round-trip
	assert_eq "$output" "round-trip"
}

registry_with_auth() { # MODE: start a second registry with auth, copy busybox into it
	local dir="$BATS_TEST_TMPDIR/reg-$1"
	AR=$("$BERTH_REPO/scripts/registry" start --auth "$1" "$dir")
	berth_defer "$BERTH_REPO/scripts/registry" stop "$dir"
	skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --dest-creds berth:s3cret \
		"docker://$R/test/busybox:latest" "docker://$AR/private/busybox:latest"
}

@test "auth: basic — 401 without credentials, --creds, login/logout through the auth file" {
	registry_with_auth basic
	run --separate-stderr b pull -q --tls-verify=false "$AR/private/busybox"
	assert_fails_with "authentication required"
	run --separate-stderr b pull -q --tls-verify=false --creds berth:wrong "$AR/private/busybox"
	assert_fails_with "invalid username or password"
	pull --creds berth:s3cret "$AR/private/busybox"
	b rmi -a
	run --separate-stderr b login --tls-verify=false -u berth -p wrong "$AR"
	assert_fails_with "invalid username or password"
	run b login --tls-verify=false -u berth -p s3cret "$AR"
	assert_eq "$output" "Login Succeeded!"
	jq -e --arg r "$AR" '.auths[$r].auth' "$REGISTRY_AUTH_FILE"
	pull "$AR/private/busybox"
	b logout "$AR"
	b rmi -a
	run --separate-stderr b pull -q --tls-verify=false "$AR/private/busybox"
	assert_fails_with "authentication required"
	run --separate-stderr b logout "$AR"
	assert_fails_with "not logged into"
}

@test "auth: bearer tokens from the registry's token server" {
	registry_with_auth token
	run --separate-stderr b pull --tls-verify=false "$AR/private/busybox"
	[[ "$status" -ne 0 ]]
	pull --creds berth:s3cret "$AR/private/busybox"
	run b run --rm "$AR/private/busybox" echo token-ok
	assert_eq "$output" "token-ok"
	b tag "$AR/private/busybox" "$AR/private/pushed:1"
	b push --tls-verify=false --creds berth:s3cret "$AR/private/pushed:1"
}

@test "import: a root file system tarball becomes a runnable image" {
	tar -C "$BERTH_ROOTFS" -czf "$BATS_TEST_TMPDIR/rootfs.tgz" .
	run --separate-stderr b import -c 'CMD ["echo", "imported"]' -c 'ENV GREETING=hi' "$BATS_TEST_TMPDIR/rootfs.tgz" localhost/imported
	assert_status 0
	assert_contains "$output" "sha256:"
	run b run --rm localhost/imported
	assert_eq "$output" "imported"
	run b run --rm localhost/imported sh -c 'echo $GREETING'
	assert_eq "$output" "hi"
	run --separate-stderr b import "$BATS_TEST_TMPDIR/nosuch.tgz" localhost/x
	assert_fails_with "nosuch.tgz"
	run --separate-stderr b import -c 'FROM x' "$BATS_TEST_TMPDIR/rootfs.tgz"
	assert_fails_with "unsupported instruction FROM"
}

@test "save and load: docker-archive and oci-archive round trips" {
	pull "$R/test/layers"
	for format in docker-archive oci-archive; do
		b save --format "$format" -o "$BATS_TEST_TMPDIR/$format.tar" "$R/test/layers"
		b rmi -a
		run --separate-stderr b load -i "$BATS_TEST_TMPDIR/$format.tar"
		assert_status 0
		assert_contains "$output" "$R/test/layers:latest"
		run b run --rm "$R/test/layers" cat /opaque/new
		assert_eq "$output" "new"
	done
	run --separate-stderr b load -i "$BATS_TEST_TMPDIR/nosuch.tar"
	assert_fails_with "nosuch.tar"
}

@test "system check: clean after pulls; finds and repairs a corrupt blob and a broken layer" {
	pull "$R/test/busybox"
	run b system check
	assert_status 0
	assert_contains "$output" "store is consistent"
	blob=$(ls "$STATE/blobs/sha256" | head -n1)
	b unshare sh -c "echo garbage >> '$STATE/blobs/sha256/$blob'"
	run b system check
	assert_status 1
	assert_contains "$output" "problem: blob sha256:$blob"
	run b system check --repair
	assert_contains "$output" "repaired"
	run b system check
	assert_status 0
	pull "$R/test/busybox"
	run b run --rm "$R/test/busybox" echo repaired
	assert_eq "$output" "repaired"
}

@test "kill -9 in the middle of a pull leaves a store that checks clean, and a re-pull completes" {
	b pull --tls-verify=false "$R/test/debian:bookworm" >/dev/null 2>&1 &
	pid=$!
	# Let it get into the layers.
	for _ in $(seq 100); do [[ -n "$(ls -A "$STATE/tmp" 2>/dev/null)" ]] && break; sleep 0.05; done
	sleep 0.3
	kill -0 "$pid" 2>/dev/null || fail "the pull ended before it could be killed: nothing was interrupted"
	pkill -9 -P "$pid" berth 2>/dev/null || true
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" || true
	# The rootless pull runs in a child inside its user namespace: give it a moment to die with its parent's pipe.
	for _ in $(seq 50); do pgrep -f "berth --root $STATE pull" >/dev/null || break; sleep 0.1; done
	run b system check --quick
	assert_status 0
	assert_contains "$output" "store is consistent"
	pull "$R/test/debian:bookworm"
	run b run --rm "$R/test/debian:bookworm" sh -c '. /etc/os-release; echo $VERSION_CODENAME'
	assert_eq "$output" "bookworm"
	run b system check
	assert_status 0
}

@test "concurrency: parallel pulls and rmi of the same image leave one consistent store" {
	for i in 1 2 3 4; do
		b pull -q --tls-verify=false "$R/test/layers" >"$BATS_TEST_TMPDIR/p$i" 2>&1 &
	done
	wait
	for i in 1 2 3 4; do
		[[ "$(cat "$BATS_TEST_TMPDIR/p$i")" =~ ^[0-9a-f]{64}$ ]] || fail "pull $i: $(cat "$BATS_TEST_TMPDIR/p$i")"
	done
	assert_eq "$(b images -q | wc -l)" 1
	( b rmi -a >/dev/null 2>&1 & b pull -q --tls-verify=false "$R/test/busybox" >/dev/null 2>&1 & wait )
	run b system check
	assert_status 0
}

@test "info: store, root file system driver, search registries" {
	run b info
	assert_status 0
	assert_contains "$output" "graphRoot: $STATE"
	assert_contains "$output" "rootfs: overlay"
	[[ "$BERTH_AS" == root ]] || assert_contains "$output" "userxattr"
	run b info --format json
	jq -e '.store.graphDriverName == "overlay"' <<<"$output"
}

@test "rootfs: fuse-overlayfs when forced (the fallback for kernels without overlayfs in user namespaces)" {
	[[ -r /dev/fuse && -w /dev/fuse ]] || skip "/dev/fuse is not usable by $(id -un) on this host"
	command -v fuse-overlayfs >/dev/null || skip "fuse-overlayfs is not installed"
	pull "$R/test/layers"
	BERTH_STORAGE_DRIVER=fuse-overlayfs run b run --rm "$R/test/layers" sh -c 'grep " / / " /proc/self/mountinfo; ls -A /opaque'
	assert_status 0
	assert_contains "${lines[0]}" "fuse-overlayfs"
	assert_eq "${lines[1]}" "new"
	BERTH_STORAGE_DRIVER=fuse-overlayfs run b info
	assert_contains "$output" "rootfs: fuse-overlayfs"
}

@test "rootfs: a copy of the layers when forced (the last fallback), whiteouts and owners applied" {
	pull "$R/test/layers"
	BERTH_STORAGE_DRIVER=copy run b run --rm "$R/test/layers" sh -c '
		ls -A /data | tr "\n" " "; echo
		ls -A /opaque
		stat -c "%i" /data/b /data/b-hardlink | uniq | wc -l
		stat -c "%a %u:%g" /data/setuid /data/owned
		echo changed > /data/b'
	assert_status 0
	assert_eq "${lines[0]}" "b b-hardlink owned setuid symlink xattr "
	assert_eq "${lines[1]}" "new"
	assert_eq "${lines[2]}" "1"
	assert_eq "${lines[3]}" "4755 0:0"
	assert_eq "${lines[4]}" "640 1000:1000"
	# The layers themselves are untouched, and the copy goes with the container.
	run b run --rm "$R/test/layers" cat /data/b
	assert_eq "$output" "b"
	assert_eq "$(ls -A "$STATE/containers")" ""
	BERTH_STORAGE_DRIVER=copy run b info
	assert_contains "$output" "rootfs: copy"
}
