#!/usr/bin/env bats
# Specs/network.md, end to end: network modes, bridge networks (netavark,
# aardvark-dns), rootless pasta, published ports, /etc/hosts and friends,
# the network commands and teardown, as root and as an unprivileged user
# (BERTH_AS). Each test has its own store and runtime state (engine_setup).
#
# Traffic stays on 127.0.0.0/8 and inside networks the test made. Subnets
# are 10.89.(100 + 3 * test number + k).0/24 (see subnet), host ports are
# random in 20000-39999 and bound on 127.0.0.1 only.
bats_require_minimum_version 1.5.0
load helpers

setup_file() { engine_setup_file; }
setup() {
	engine_setup
	: >"$BATS_TEST_TMPDIR/.bridges"
}
teardown() {
	local rc=0
	# The namespace bound by the ns:PATH test.
	if [[ -n $(mounts_under "$BATS_TEST_TMPDIR/netns") ]]; then umount "$BATS_TEST_TMPDIR/netns" || rc=1; fi
	engine_teardown || rc=1
	bridges_gone || rc=1
	return $rc
}

# The web server most tests run: "hello from $WHO" on port 80.
HTTPD='mkdir -p /www && echo "hello from $WHO" >/www/index.html && exec httpd -f -p 80 -h /www'

root_only() {
	[[ $BERTH_AS == root ]] || skip "${1:-this test is about root's defaults or the host's own namespace}"
}

# holder_pid — the pid of the rootless network namespace's holder, while it runs.
holder_pid() {
	local pid
	pid=$(jq -r '.pid // empty' "$RUNROOT/@rootless-netns/holder.json" 2>/dev/null) || return 0
	[[ -n $pid ]] && pid_alive "$pid" && echo "$pid"
	return 0
}

# in_net CMD ARG... — CMD where this test's bridges, veths, firewall rules
# and aardvark-dns live: the host's network namespace as root, the rootless
# network namespace (as its root) for a user. Fails when there is none.
in_net() {
	[[ $BERTH_AS == root ]] && { "$@"; return; }
	local pid
	pid=$(holder_pid)
	[[ -n $pid ]] || return 1
	nsenter -t "$pid" -U -n -- "$@"
}

# subnet K — this test's K-th /24 (K = 0, 1, 2); prefix K — its first three octets.
subnet() {
	local third=$((100 + 3 * BATS_TEST_NUMBER + $1))
	((third <= 255)) || fail "test $BATS_TEST_NUMBER: no subnet left for k=$1"
	echo "10.89.$third.0/24"
}
prefix() { local s; s=$(subnet "$1") && echo "${s%.0/24}"; }

# net NAME K [FLAG...] — a bridge network on subnet K; its bridge is
# checked at teardown.
net() {
	local name=$1 k=$2 br
	shift 2
	e network create --subnet "$(subnet "$k")" "$@" "$name" >/dev/null ||
		fail "network create $name failed"
	br=$(e network inspect "$name" | jq -r '.[0].network_interface')
	echo "$br $(prefix "$k").1" >>"$BATS_TEST_TMPDIR/.bridges"
}

bridge_of() { e network inspect "$1" | jq -r '.[0].network_interface'; }
link_exists() { in_net ip link show "$1" >/dev/null 2>&1; }
link_gone() { ! link_exists "$1"; }

# bridges_gone — no bridge of this test's networks is left on the host.
# One still carrying its gateway address is ours: reported, then deleted.
bridges_gone() {
	local br gw rc=0 pid
	if [[ $BERTH_AS == rootless ]]; then
		# The last container out stops the rootless network namespace.
		pid=$(holder_pid)
		[[ -z $pid ]] && return 0
		wait_until 5 pid_dead "$pid" && return 0
		echo "teardown: the rootless network namespace's holder $pid still runs; killing it" >&2
		kill -KILL "$pid"
		return 1
	fi
	while read -r br gw; do
		[[ -n $br ]] || continue
		if link_exists "$br"; then
			if ip -o -4 addr show dev "$br" | grep -qF " $gw/"; then
				echo "teardown: bridge $br ($gw) left on the host; deleting it" >&2
				ip link delete "$br" || true
				rc=1
			fi
		fi
	done <"$BATS_TEST_TMPDIR/.bridges"
	return $rc
}

# serve NAME RUN-FLAG... IMAGE — a detached httpd container serving
# "hello from NAME"; returns once it answers inside.
serve() {
	local name=$1
	shift
	e run -d --name "$name" -e WHO="$name" "$@" sh -c "$HTTPD" >/dev/null || fail "could not start $name"
	wait_until 10 served_inside "$name" || fail "httpd in $name does not answer: $(e logs "$name" 2>&1)"
}
served_inside() { e exec "$1" timeout 3 wget -q -O- http://127.0.0.1/ >/dev/null 2>&1; }

# free_port — a TCP port in 20000-39999 that nothing on the host listens on.
free_port() {
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 20000))
		if [[ -z $(ss -Hltn "sport = :$p") ]]; then
			echo "$p"
			return 0
		fi
	done
	fail "no free port found"
}
port_free() { [[ -z $(ss -Hltn "sport = :$1") ]]; }

# host_get PORT — GET http://127.0.0.1:PORT/ from the host (no proxy).
host_get() { timeout 5 busybox wget -q -Y off -O - "http://127.0.0.1:$1/" 2>&1; }
host_serves() { [[ $(host_get "$1") == "$2" ]]; }

# fw_rules — the host's iptables rules (nat and filter), as root.
# (Rootless, with no namespace left, there are none.)
fw_rules() { in_net iptables -t nat -S 2>&1; in_net iptables -S 2>&1; return 0; }
assert_no_rule() {
	local rules
	rules=$(fw_rules)
	[[ $rules != *"$1"* ]] || fail "iptables rules still mention $1:
$(grep -F -- "$1" <<<"$rules")"
}

# host_veth CTR [IFACE] — the interface index of the host end of CTR's
# veth (root: the container has its own sysfs). Indexes, unlike names
# (veth0, veth1 …), are not given again to the next veth.
host_veth() {
	local idx
	idx=$(e exec "$1" cat "/sys/class/net/${2:-eth0}/iflink") || return 1
	[[ -n $(host_link "$idx") ]] && echo "$idx"
}
# host_link INDEX — the host's `ip -o link` line of that interface, if any.
host_link() { in_net ip -o link | awk -F': ' -v i="$1" '$1 == i'; }
veth_gone() { [[ -z $(host_link "$1") ]]; }

# ipv4_of CTR [IFACE] — CTR's IPv4 address on IFACE (eth0).
ipv4_of() {
	e exec "$1" ip -o -4 addr show dev "${2:-eth0}" | awk '{ sub(/\/.*/, "", $4); print $4; exit }'
}

# pasta_pids — pids of the pasta processes of this user (their process
# name is passt.avx2 or so: match the command line).
pasta_pids() { pgrep -u "$(id -u)" -f '^([^ ]*/)?pasta(\.avx2)?( |$)' | sort; }
# pastas_for PORT — those forwarding host port 127.0.0.1:PORT (pasta's own
# -t/-u syntax, ADDR/PORT:…), so other users of this account do not count.
pastas_for() {
	local p
	for p in $(pasta_pids); do
		[[ $(tr '\0' ' ' <"/proc/$p/cmdline" 2>&1) == *" 127.0.0.1/$1:"* ]] && echo "$p"
	done
	return 0
}

host_netns() { readlink /proc/self/ns/net; }
host_ifaces() { grep : /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort; }
host_ipv4s() { ip -o -4 addr show | awk '{ sub(/\/.*/, "", $4); print $4 }'; }

# hosts_lines TEXT — /etc/hosts lines with whitespace squeezed to one space.
squeeze() { tr -s ' \t' '  ' <<<"$1" | sed 's/ $//'; }

# assert_berth_line PHRASE — after `run --separate-stderr`: a failure with
# one stderr line, "berth: …", containing PHRASE.
assert_berth_line() {
	assert_fails_with "$1"
	[[ ${stderr_lines[0]} == "berth: "* ]] || fail "not a 'berth: ' line: ${stderr_lines[0]}"
}

# dns_listening ADDR — something serves DNS (udp) on ADDR:53.
dns_listening() { in_net ss -Hlun "sport = :53" | awk '{ print $4 }' | grep -qxF "$1:53"; }

# parent_iface — a host interface other than lo (for macvlan configs).
parent_iface() { ip -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2; exit }'; }

# busybox plus EXPOSE 80, as image NAME.
exposed_image() {
	e import -q -c 'CMD ["sh"]' -c 'EXPOSE 80' "$BERTH_BUSYBOX_TAR" "$1" >/dev/null ||
		fail "cannot import an image with EXPOSE 80"
}

# ------------------------------------------------------------ network commands

@test "the default network berth: always listed, inspectable, exists, cannot be removed" {
	run e network ls
	assert_status 0
	[[ ${lines[0]} =~ ^NETWORK\ ID\ +NAME\ +DRIVER$ ]] || fail "header: ${lines[0]}"
	assert_eq "${#lines[@]}" 2
	[[ ${lines[1]} =~ ^([0-9a-f]{12})\ +berth\ +bridge$ ]] || fail "row: ${lines[1]}"
	short=${BASH_REMATCH[1]}
	run e network ls -q
	assert_eq "$output" "berth"

	run e network inspect berth
	assert_status 0
	assert_eq "$(jq -r 'length' <<<"$output")" 1
	assert_eq "$(jq -r '.[0] | [.name, .driver, .network_interface, (.dns_enabled | tostring), (.internal | tostring)] | join(" ")' <<<"$output")" \
		"berth bridge berth0 false false"
	assert_eq "$(jq -c '[.[0].subnets[] | {subnet, gateway}]' <<<"$output")" '[{"subnet":"10.88.0.0/16","gateway":"10.88.0.1"}]'
	id=$(jq -r '.[0].id' <<<"$output")
	[[ $id =~ ^[0-9a-f]{64}$ ]] || fail "id: $id"
	assert_eq "${id:0:12}" "$short" "ls's id"

	run e network exists berth
	assert_status 0
	assert_eq "$output" ""
	run e network exists nosuch
	assert_status 1
	assert_eq "$output" ""

	run --separate-stderr e network rm berth
	assert_status 125
	assert_berth_line 'default network berth'
	run e network rm -f berth
	[[ $status != 0 ]] || fail "network rm -f berth succeeded"
	run e network prune -f
	assert_status 0
	assert_eq "$output" ""
	run e network ls -q
	assert_eq "$output" "berth"
}

@test "network create: subnets given and chosen, gateway, labels, internal, IPv6, macvlan; stored in the store" {
	p=$(prefix 0)
	run e network create --subnet "$(subnet 0)" --gateway "$p.254" --label app=web --label tier= --internal --disable-dns given
	assert_status 0
	assert_eq "$output" "given"
	run e network inspect given
	assert_status 0
	assert_eq "$(jq -c '[.[0].subnets[] | {subnet, gateway}]' <<<"$output")" "[{\"subnet\":\"$p.0/24\",\"gateway\":\"$p.254\"}]"
	assert_eq "$(jq -r '.[0] | [.driver, (.internal | tostring), (.dns_enabled | tostring), (.ipv6_enabled | tostring)] | join(" ")' <<<"$output")" \
		"bridge true false false"
	assert_eq "$(jq -c '.[0].labels' <<<"$output")" '{"app":"web","tier":""}'
	[[ $(jq -r '.[0].id' <<<"$output") =~ ^[0-9a-f]{64}$ ]] || fail "id: $output"
	[[ $(jq -r '.[0].created' <<<"$output") =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T ]] || fail "created: $output"
	br1=$(jq -r '.[0].network_interface' <<<"$output")
	[[ $br1 =~ ^berth[1-9][0-9]*$ ]] || fail "bridge: $br1"
	# The file in the store is netavark's config.
	assert_eq "$(jq -r '.name + " " + .network_interface' "$STATE/networks/given.json")" "given $br1"

	# No --subnet: a free 10.89.N.0/24, gateway .1, DNS on; another bridge.
	subs=() brs=("$br1")
	for n in auto1 auto2; do
		run e network create "$n"
		assert_status 0
		assert_eq "$output" "$n"
		run e network inspect "$n"
		s=$(jq -r '.[0].subnets[0].subnet' <<<"$output")
		[[ $s =~ ^10\.89\.([0-9]+)\.0/24$ ]] || fail "$n: subnet $s"
		assert_eq "$(jq -r '.[0].subnets[0].gateway' <<<"$output")" "10.89.${BASH_REMATCH[1]}.1" "$n's gateway"
		assert_eq "$(jq -r '.[0] | [(.dns_enabled | tostring), (.internal | tostring)] | join(" ")' <<<"$output")" "true false" "$n dns/internal"
		subs+=("$s")
		brs+=("$(jq -r '.[0].network_interface' <<<"$output")")
	done
	[[ $(printf '%s\n' "$p.0/24" "${subs[@]}" | sort -u | wc -l) == 3 ]] || fail "subnets not distinct: $p.0/24 ${subs[*]}"
	[[ $(printf '%s\n' "${brs[@]}" | sort -u | wc -l) == 3 ]] || fail "bridges not distinct: ${brs[*]}"
	for br in "${brs[@]}"; do [[ $br =~ ^berth[1-9][0-9]*$ ]] || fail "bridge name: $br"; done

	# --ipv6 without a v6 subnet: a random fdXX:…::/64 besides the IPv4 one.
	e network create --ipv6 six >/dev/null
	run e network inspect six
	assert_eq "$(jq -r '.[0].ipv6_enabled' <<<"$output")" "true"
	jq -r '.[0].subnets[].subnet' <<<"$output" | grep -qE '^fd[0-9a-f]{2}:[0-9a-f:]*::/64$' ||
		fail "no fdXX::/64 subnet: $(jq -c '.[0].subnets' <<<"$output")"
	jq -r '.[0].subnets[].subnet' <<<"$output" | grep -qE '^10\.89\.[0-9]+\.0/24$' ||
		fail "no IPv4 subnet: $(jq -c '.[0].subnets' <<<"$output")"

	# macvlan on a parent interface (config only: no container joins it).
	parent=$(parent_iface)
	run e network create --driver macvlan -o parent="$parent" --subnet "$(subnet 1)" mv
	assert_status 0
	assert_eq "$output" "mv"
	run e network inspect mv
	assert_eq "$(jq -r '.[0].driver' <<<"$output")" "macvlan"
	assert_contains "$(jq -c '[.[0].network_interface, .[0].options]' <<<"$output")" "\"$parent\"" "macvlan parent"
}

@test "network ls: every network and the default; -q, --filter, --format" {
	e network create --subnet "$(subnet 0)" front >/dev/null
	e network create --subnet "$(subnet 1)" back >/dev/null
	e network create --driver macvlan -o parent="$(parent_iface)" --subnet "$(subnet 2)" mac >/dev/null

	run e network ls
	assert_status 0
	assert_eq "${#lines[@]}" 5
	for row in "berth bridge" "front bridge" "back bridge" "mac macvlan"; do
		printf '%s\n' "${lines[@]:1}" | grep -qE "^[0-9a-f]{12} +${row% *} +${row#* }$" ||
			fail "no row for $row in:
$output"
	done
	# The default first, then by name.
	run e network ls -q
	assert_eq "$output" $'berth\nback\nfront\nmac'
	run e network ls -q --filter name=front
	assert_eq "$output" "front"
	run e network ls -q --filter driver=macvlan
	assert_eq "$output" "mac"
	run e network ls --format '{{.Name}} {{.Driver}}' --filter name=back
	assert_eq "$output" "back bridge"
	run e network ls --format json
	assert_status 0
	assert_eq "$(jq -r '[.[].name] | sort | join(" ")' <<<"$output")" "back berth front mac"
	assert_eq "$(jq -r '.[] | select(.name == "front") | .subnets[0].subnet' <<<"$output")" "$(subnet 0)"
}

@test "network create errors: an overlapping subnet, a used name, bad values, unknown driver; nothing is stored" {
	p=$(prefix 0)
	e network create --subnet "$p.0/24" first >/dev/null
	run --separate-stderr e network create --subnet "$p.128/25" second
	assert_status 125
	assert_eq "$stderr" "berth: subnet $p.128/25 overlaps with network \"first\" ($p.0/24)"
	run --separate-stderr e network create --subnet 10.88.7.0/24 third
	assert_status 125
	assert_eq "$stderr" 'berth: subnet 10.88.7.0/24 overlaps with network "berth" (10.88.0.0/16)'

	run --separate-stderr e network create --subnet "$(subnet 1)" first
	assert_status 125
	assert_berth_line 'first'
	run --separate-stderr e network create --subnet "$p.0/33" bad1
	assert_status 125
	assert_berth_line "$p.0/33"
	run --separate-stderr e network create --subnet nonsense bad2
	assert_status 125
	assert_berth_line 'nonsense'
	run --separate-stderr e network create --subnet "$(subnet 2)" --gateway 10.77.0.1 bad3
	assert_status 125
	assert_berth_line '10.77.0.1'
	run --separate-stderr e network create --driver warp bad4
	assert_status 125
	assert_berth_line 'warp'
	run --separate-stderr e network create 'bad/5'
	assert_status 125
	assert_berth_line 'invalid network name "bad/5"'

	run e network ls -q
	assert_eq "$(sort <<<"$output" | tr '\n' ' ')" "berth first "
	for n in second third bad1 bad2 bad3 bad4; do
		run e network exists "$n"
		assert_status 1
		[[ ! -e $STATE/networks/$n.json ]] || fail "$n.json stored"
	done
	# The first network is unchanged.
	assert_eq "$(e network inspect first | jq -r '.[0].subnets[0].subnet')" "$p.0/24"
}

@test "unknown networks: run, create, inspect, rm, connect each fail with one line, 125, and make nothing" {
	e create --name here --network none busybox true >/dev/null
	for cmd in "run --rm --network nosuch busybox true" "create --network nosuch busybox true" \
		"network inspect nosuch" "network rm nosuch" "network connect nosuch here" \
		"network disconnect nosuch here"; do
		# shellcheck disable=SC2086
		run --separate-stderr e $cmd
		assert_status 125
		assert_eq "$stderr" 'berth: network "nosuch" not found' "berth $cmd"
	done
	run --separate-stderr e run --rm --network container:ghost busybox true
	assert_status 125
	assert_berth_line 'ghost'
	run e ps -a --format '{{.Names}}'
	assert_eq "$output" "here"
	run e network ls -q
	assert_eq "$output" "berth"
}

@test "network rm and prune: unused networks go, their names printed; the default stays" {
	e network create --subnet "$(subnet 0)" a >/dev/null
	e network create --subnet "$(subnet 1)" b >/dev/null
	e network create --subnet "$(subnet 2)" c >/dev/null
	run e network rm a b
	assert_status 0
	assert_eq "$output" $'a\nb'
	run e network exists a
	assert_status 1
	[[ ! -e $STATE/networks/a.json ]] || fail "a.json left"
	e network create --subnet "$(subnet 0)" d >/dev/null
	run e network prune -f
	assert_status 0
	assert_eq "$(sort <<<"$output" | tr '\n' ' ')" "c d "
	run e network ls -q
	assert_eq "$output" "berth"
	run e network prune
	assert_status 0
	assert_eq "$output" ""
}

@test "network rm of a network in use: exit 2 and one line; -f removes its containers first; prune keeps it" {
	net used 0
	net spare 1
	e create --name waiting --network used busybox true >/dev/null
	e run -d --name busy --network used busybox sleep 1000 >/dev/null
	pid=$(e inspect --format '{{.State.Pid}}' busy)
	run --separate-stderr e network rm used
	assert_status 2
	assert_berth_line 'in use'
	assert_contains "$stderr" "used" "the error"
	run e network exists used
	assert_status 0

	run e network prune -f
	assert_status 0
	assert_eq "$output" "spare"
	run e network ls -q
	assert_eq "$(sort <<<"$output" | tr '\n' ' ')" "berth used "

	br=$(bridge_of used)
	link_exists "$br" || fail "no bridge $br while busy runs"
	run e network rm -f used
	assert_status 0
	assert_eq "$output" "used"
	wait_until 10 pid_dead "$pid" || fail "busy still runs"
	run e ps -a --format '{{.Names}}'
	assert_eq "$output" ""
	run e network exists used
	assert_status 1
	wait_until 5 link_gone "$br" || fail "bridge $br left after network rm -f"
	assert_no_rule "$(subnet 0)"
}

@test "rootless: bridge networks live in the user's rootless network namespace, which the last container out stops" {
	[[ $BERTH_AS == rootless ]] || skip "as root the bridges are the host's (the other tests)"
	host_links=$(ip -o link | awk -F': ' '{ print $2 }' | sort)
	[[ -z $(holder_pid) ]] || fail "a rootless network namespace runs before any container"
	net mine 0
	e run -d --name one --network mine busybox sleep 1000 >/dev/null
	e run -d --name two --network berth busybox sleep 1000 >/dev/null
	holder=$(holder_pid)
	[[ -n $holder ]] || fail "no rootless network namespace while bridge containers run"
	# The bridges are there, not on the host.
	br=$(bridge_of mine)
	link_exists "$br" || fail "no bridge $br in the rootless network namespace"
	link_exists berth0 || fail "no bridge berth0 in the rootless network namespace"
	assert_eq "$(ip -o link | awk -F': ' '{ print $2 }' | sort)" "$host_links" "the host's interfaces"
	# Both containers share its user namespace, each has its own network namespace.
	p1=$(e inspect --format '{{.State.Pid}}' one)
	p2=$(e inspect --format '{{.State.Pid}}' two)
	assert_eq "$(readlink "/proc/$p1/ns/user")" "$(readlink "/proc/$holder/ns/user")" "one's user namespace"
	assert_eq "$(readlink "/proc/$p2/ns/user")" "$(readlink "/proc/$holder/ns/user")" "two's user namespace"
	[[ $(readlink "/proc/$p1/ns/net") != "$(readlink "/proc/$p2/ns/net")" ]] || fail "one and two share a network namespace"
	[[ $(readlink "/proc/$p1/ns/net") != "$(readlink "/proc/$holder/ns/net")" ]] || fail "one is in the holder's network namespace"
	# The same user's ids inside as in any rootless container: 0 is the user.
	assert_eq "$(e exec one cat /proc/self/uid_map | awk 'NR == 1 { print $1, $2, $3 }')" "0 $(id -u) 1"
	# Its bridge answers from the rootless network namespace.
	run e exec one ping -c 1 -W 2 "$(prefix 0).1"
	assert_status 0
	e rm -f one >/dev/null
	pid_alive "$holder" || fail "the holder stopped while two still runs"
	e rm -f two >/dev/null
	wait_until 5 pid_dead "$holder" || fail "the holder $holder outlived the last bridge container"
	[[ -z $(pastas_of_holder "$holder") ]] || fail "pasta of the rootless network namespace still runs"
	# keep-id maps the user elsewhere: not with a bridge network, one line, nothing made.
	run --separate-stderr e run --rm --userns keep-id --network mine busybox true
	assert_status 125
	assert_berth_line '--userns=keep-id cannot be combined with bridge network "mine"'
	run e ps -a -q
	assert_eq "$output" ""
}

# pastas_of_holder PID — pasta processes attached to that holder's namespaces.
pastas_of_holder() {
	local p
	for p in $(pasta_pids); do
		[[ $(tr '\0' ' ' <"/proc/$p/cmdline" 2>&1) == *"/proc/$1/ns/net"* ]] && echo "$p"
	done
	return 0
}

# ------------------------------------------------------------- network modes

@test "root default: the network berth, an address in 10.88.0.0/16, a route out via 10.88.0.1; inspect agrees" {
	root_only "pasta is the rootless default (tested below)"
	e run -d --name one busybox sleep 1000 >/dev/null
	e run -d --name two busybox sleep 1000 >/dev/null
	ip1=$(ipv4_of one)
	ip2=$(ipv4_of two)
	[[ $ip1 == 10.88.* && $ip2 == 10.88.* && $ip1 != "$ip2" ]] || fail "addresses: $ip1 $ip2"
	run e exec one ip route
	assert_contains "$output" "default via 10.88.0.1"
	mac=$(e exec one cat /sys/class/net/eth0/address)

	run e inspect one
	mode=$(jq -r '.[0].HostConfig.NetworkMode' <<<"$output")
	assert_eq "$(jq -r '.[0].NetworkSettings | [.IPAddress, .Gateway, .MacAddress] | join(" ")' <<<"$output")" "$ip1 10.88.0.1 $mac"
	assert_eq "$(jq -r '.[0].NetworkSettings.Networks | keys | join(" ")' <<<"$output")" "berth"
	assert_eq "$(jq -r '.[0].NetworkSettings.Networks.berth | [.IPAddress, (.IPPrefixLen | tostring), .Gateway, .MacAddress] | join(" ")' <<<"$output")" \
		"$ip1 16 10.88.0.1 $mac"
	assert_eq "$(jq -r '.[0].NetworkSettings.Networks.berth.NetworkID' <<<"$output")" "$(e network inspect berth | jq -r '.[0].id')"

	# The host ends of their veths are on berth0; both go with the containers.
	v1=$(host_veth one)
	v2=$(host_veth two)
	[[ -n $v1 && -n $v2 ]] || fail "no host veth: '$v1' '$v2'"
	assert_contains "$(host_link "$v1")" "master berth0"
	id1=$(e inspect --format '{{.Id}}' one)
	e rm -f one two >/dev/null
	wait_until 5 veth_gone "$v1" || fail "veth left: $(host_link "$v1")"
	wait_until 5 veth_gone "$v2" || fail "veth left: $(host_link "$v2")"
	assert_no_rule "$id1"
	wait_until 5 link_gone berth0 || fail "berth0 left after its last container"
	# As podman shows it: the mode, not the network's name.
	assert_eq "$mode" "bridge" ".HostConfig.NetworkMode"
}

@test "rootless default: pasta gives the container the host's address and default route" {
	[[ $BERTH_AS == rootless ]] || skip "pasta is the rootless default (root: the default network, tested above)"
	dev=$(ip -4 route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
	gw=$(ip -4 route show default | awk '{ print $3; exit }')
	[[ -n $dev ]] || skip "the host has no IPv4 default route for pasta to copy"
	addr=$(ip -o -4 addr show dev "$dev" scope global | awk '{ sub(/\/.*/, "", $4); print $4; exit }')
	e run -d --name p busybox sleep 1000 >/dev/null
	run e exec p sh -c 'ip -o -4 addr show scope global; ip route'
	assert_status 0
	assert_contains "$output" " $addr/"
	assert_contains "$output" "default via $gw"
	assert_eq "$(e inspect --format '{{.HostConfig.NetworkMode}}' p)" "pasta"
	# Its own namespace, not the host's.
	[[ $(e exec p readlink /proc/self/ns/net) != "$(host_netns)" ]] || fail "pasta container shares the host's netns"
}

@test "--network none: only lo; host: the host's namespace; container:NAME: the other's namespace" {
	run e run --rm --network none busybox sh -c 'readlink /proc/self/ns/net; cat /proc/net/dev'
	assert_status 0
	[[ ${lines[0]} != "$(host_netns)" ]] || fail "none shares the host's netns"
	assert_eq "$(grep : <<<"$output" | grep -v '^net:' | cut -d: -f1 | tr -d ' ')" "lo"

	# The host's interfaces: all that exist both before and after the run
	# (other containers may come and go meanwhile), and none it never had.
	before=$(host_ifaces)
	run e run --rm --network host busybox sh -c 'readlink /proc/self/ns/net; cat /proc/net/dev'
	assert_status 0
	after=$(host_ifaces)
	assert_eq "${lines[0]}" "$(host_netns)" "host mode netns"
	seen=$(grep : <<<"$output" | grep -v '^net:' | cut -d: -f1 | tr -d ' ' | sort)
	missing=$(comm -23 <(comm -12 <(echo "$before") <(echo "$after")) <(echo "$seen"))
	extra=$(comm -13 <(sort -u <(echo "$before") <(echo "$after")) <(echo "$seen"))
	[[ -z $missing && -z $extra ]] || fail "host mode interfaces: missing '$missing', extra '$extra'"
	grep -qvx lo <<<"$seen" || fail "host mode shows only lo"

	e run -d --name base busybox sleep 1000 >/dev/null
	e run -d --name other busybox sleep 1000 >/dev/null
	want=$(e exec base sh -c 'readlink /proc/self/ns/net; ip -o addr')
	run e run --rm --network container:base busybox sh -c 'readlink /proc/self/ns/net; ip -o addr'
	assert_status 0
	assert_eq "$output" "$want" "container:base's interfaces"
	grep -q 'eth0\|global' <<<"$want" || fail "base has no interface but lo: $want"
	[[ $(e exec other readlink /proc/self/ns/net) != "$(head -n1 <<<"$want")" ]] || fail "two containers share a netns"
	# No ports of their own.
	run e run -d --name joined --network container:base busybox sleep 1000
	assert_status 0
	run e port joined
	assert_status 0
	assert_eq "$output" ""
}

@test "--network ns:PATH joins the namespace bound at PATH" {
	[[ $BERTH_AS == root ]] || skip "binding a network namespace to a file (unshare --net=FILE) needs root"
	nsf="$BATS_TEST_TMPDIR/netns"
	: >"$nsf"
	unshare --net="$nsf" true || skip "cannot bind a network namespace here (unshare --net=FILE)"
	nsenter --net="$nsf" ip link add probe0 type veth peer name probe1 || fail "cannot add a veth in the namespace"
	run e run --rm --network "ns:$nsf" busybox sh -c 'readlink /proc/self/ns/net; ip -o link'
	assert_status 0
	assert_eq "${lines[0]}" "net:[$(stat -L -c %i "$nsf")]"
	assert_contains "$output" "probe0"
}

@test "slirp4netns: an interface with an address and a default route; its process ends with the container" {
	command -v slirp4netns >/dev/null || skip "slirp4netns is not installed"
	before=$(pgrep -u "$(id -u)" -x slirp4netns | sort)
	e run -d --name s --network slirp4netns busybox sleep 1000 >/dev/null
	run e exec s sh -c 'ip -o -4 addr show scope global; ip route'
	assert_status 0
	grep -q ' inet ' <<<"$output" || fail "no IPv4 address: $output"
	assert_contains "$output" "default via"
	# Its slirp4netns: the one given the container's pid (slirp4netns PID
	# TAP), else any that appeared meanwhile.
	pid=$(e inspect --format '{{.State.Pid}}' s)
	during=$(pgrep -u "$(id -u)" -x slirp4netns | sort)
	new=$(for p in $during; do [[ " $(tr '\0' ' ' <"/proc/$p/cmdline" 2>&1)" == *" $pid "* ]] && echo "$p"; done)
	[[ -n $new ]] || new=$(comm -13 <(echo "$before") <(echo "$during"))
	[[ -n $new ]] || fail "no slirp4netns process for the container"
	e rm -f s >/dev/null
	for p in $new; do wait_until 5 pid_dead "$p" || fail "slirp4netns $p outlived its container"; done
}

# ---------------------------------------------------------------------- ports

@test "-p 127.0.0.1:PORT:80: the container's httpd answers on the host; port, ps and inspect show it; stop closes it" {
	port=$(free_port)
	serve web -p "127.0.0.1:$port:80" busybox
	wait_until 10 host_serves "$port" "hello from web" || fail "127.0.0.1:$port: $(host_get "$port")"

	run e port web
	assert_status 0
	assert_eq "$output" "80/tcp -> 127.0.0.1:$port"
	run e port web 80
	assert_eq "$output" "127.0.0.1:$port"
	run e port web 80/tcp
	assert_eq "$output" "127.0.0.1:$port"
	run --separate-stderr e port web 81
	assert_status 125
	assert_berth_line 'no public port 81/tcp published for web'
	run e ps --format '{{.Names}} {{.Ports}}'
	assert_eq "$output" "web 127.0.0.1:$port->80/tcp"
	run e inspect web
	assert_eq "$(jq -c '.[0].NetworkSettings.Ports["80/tcp"] | map({HostIp, HostPort: (.HostPort | tostring)})' <<<"$output")" \
		"[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"$port\"}]"

	e stop -t 1 web >/dev/null
	! host_serves "$port" "hello from web" || fail "127.0.0.1:$port still answers after stop"
	# Started again, it is published again on the same port.
	e start web >/dev/null
	wait_until 10 host_serves "$port" "hello from web" || fail "not served after start: $(host_get "$port")"
	e rm -f web >/dev/null
	wait_until 5 port_free "$port" || fail "127.0.0.1:$port still held: $(ss -Hltnp "sport = :$port" 2>&1)"
}

@test "-p PORT and -p 127.0.0.1::PORT: a free host port, reported by port and ps; several ports and udp" {
	serve any -p 80 busybox
	run e port any
	assert_status 0
	[[ $output =~ ^80/tcp\ -\>\ 0\.0\.0\.0:([0-9]+)$ ]] || fail "port: $output"
	p1=${BASH_REMATCH[1]}
	wait_until 10 host_serves "$p1" "hello from any" || fail "127.0.0.1:$p1: $(host_get "$p1")"
	run e ps --format '{{.Ports}}' --filter name=any
	assert_eq "$output" "0.0.0.0:$p1->80/tcp"

	serve lo -p 127.0.0.1::80 -p "127.0.0.1::5353/udp" busybox
	run e port lo
	assert_status 0
	assert_eq "${#lines[@]}" 2
	printf '%s\n' "${lines[@]}" | grep -qE '^80/tcp -> 127\.0\.0\.1:[0-9]+$' || fail "no 80/tcp line: $output"
	printf '%s\n' "${lines[@]}" | grep -qE '^5353/udp -> 127\.0\.0\.1:[0-9]+$' || fail "no 5353/udp line: $output"
	p2=$(printf '%s\n' "${lines[@]}" | sed -n 's|^80/tcp -> 127\.0\.0\.1:||p')
	[[ $p2 != "$p1" ]] || fail "two containers got host port $p1"
	wait_until 10 host_serves "$p2" "hello from lo" || fail "127.0.0.1:$p2: $(host_get "$p2")"
	run e port lo 5353/udp
	[[ $output =~ ^127\.0\.0\.1:[0-9]+$ ]] || fail "port lo 5353/udp: $output"
	run e ps --format '{{.Ports}}' --filter name=lo
	assert_contains "$output" "127.0.0.1:$p2->80/tcp"
	assert_contains "$output" "->5353/udp"
	assert_contains "$output" ","
}

@test "-P publishes the image's EXPOSEd ports and --expose ones on free host ports; without -P nothing" {
	exposed_image exposed
	e run -d --name pub -P --expose 8080 -e WHO=pub exposed sh -c "$HTTPD" >/dev/null
	wait_until 10 served_inside pub || fail "httpd in pub does not answer"
	run e port pub
	assert_status 0
	assert_eq "${#lines[@]}" 2
	p80=$(printf '%s\n' "${lines[@]}" | sed -n 's|^80/tcp -> 0\.0\.0\.0:\([0-9]*\)$|\1|p')
	p8080=$(printf '%s\n' "${lines[@]}" | sed -n 's|^8080/tcp -> 0\.0\.0\.0:\([0-9]*\)$|\1|p')
	[[ -n $p80 && -n $p8080 && $p80 != "$p8080" ]] || fail "port pub: $output"
	wait_until 10 host_serves "$p80" "hello from pub" || fail "127.0.0.1:$p80: $(host_get "$p80")"

	e run -d --name quiet -e WHO=quiet exposed sh -c "$HTTPD" >/dev/null
	run e port quiet
	assert_status 0
	assert_eq "$output" ""
	run e inspect --format '{{json .Config.ExposedPorts}}' quiet
	assert_contains "$output" '"80/tcp"'
}

@test "a host port already in use: the start fails with one line and exit 125, and holds nothing; bad -p is refused" {
	port=$(free_port)
	berth_bg "$BATS_TEST_TMPDIR/holder.log" python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
time.sleep(600)' "$port"
	holder=$BG_PID
	wait_until 10 bash -c "[[ -n \$(ss -Hltn 'sport = :$port') ]]" || fail "holder did not listen: $(cat "$BATS_TEST_TMPDIR/holder.log")"

	run --separate-stderr e run -d --name clash -p "127.0.0.1:$port:80" busybox sleep 1000
	assert_status 125
	assert_eq "$stderr" "berth: port 127.0.0.1:$port/tcp is already in use"
	run --separate-stderr e run --rm -p "127.0.0.1:$port:80" busybox true
	assert_status 125
	assert_eq "$stderr" "berth: port 127.0.0.1:$port/tcp is already in use"
	run e ps -q
	assert_eq "$output" "" "running containers"
	if [[ $BERTH_AS == root ]]; then
		for id in $(e ps -a -q --no-trunc); do assert_no_rule "$id"; done
		assert_no_rule "dport $port "
		# A record that stayed holds no address and no namespace.
		if e inspect clash >/dev/null 2>&1; then
			assert_eq "$(e inspect clash | jq -r '.[0].NetworkSettings | .IPAddress + "|" + .SandboxKey')" "|" "clash's network"
		fi
	else
		assert_eq "$(pastas_for "$port")" "" "pasta processes for port $port"
	fi

	# Once the port is free, the same container starts (when its record stayed).
	berth_stop_pid "$holder"
	if e inspect clash >/dev/null 2>&1; then
		run e start clash
		assert_status 0
		run e port clash
		assert_eq "$output" "80/tcp -> 127.0.0.1:$port"
	fi

	records=$(e ps -a -q | wc -l)
	for bad in nope 70000:80 "127.0.0.1:$port:80/sctpx" "1.2.3:80:80"; do
		run --separate-stderr e run --rm -p "$bad" busybox true
		assert_status 125
		assert_berth_line "berth: -p \"$bad\": "
		run --separate-stderr e create -p "$bad" busybox true
		assert_status 125
		assert_berth_line "berth: -p \"$bad\": "
	done
	# Only bridge networks and pasta publish ports.
	for mode in none host; do
		run --separate-stderr e run --rm --network "$mode" -p "127.0.0.1:$port:80" busybox true
		assert_status 125
		assert_berth_line "-p and -P need a bridge network or pasta, not --network $mode"
	done
	assert_eq "$(e ps -a -q | wc -l)" "$records" "containers after the refused -p"
}

# ----------------------------------------------------------- bridge networks

@test "a user network: containers reach each other by name and by alias (aardvark-dns); its DNS ends with them" {
	net lan 0
	p=$(prefix 0)
	serve web --network lan --network-alias www --network-alias site busybox
	run e run --rm --network lan busybox sh -c 'cat /etc/resolv.conf; for h in web www site; do timeout 5 wget -q -O- http://$h/ || echo "failed: $h"; done'
	assert_status 0
	assert_contains "$output" "nameserver $p.1"
	assert_contains "$output" "search dns.podman"
	assert_eq "$(grep -c '^hello from web$' <<<"$output")" 3 "answers by name, alias, alias: $output"
	run e inspect web
	assert_eq "$(jq -r '.[0].NetworkSettings.Networks.lan.Aliases | map(select(. == "www" or . == "site")) | sort | join(" ")' <<<"$output")" "site www"
	dns_listening "$p.1" || fail "nothing serves DNS on $p.1:53: $(ss -Hlun 'sport = :53')"

	br=$(bridge_of lan)
	e rm -f web >/dev/null
	wait_until 5 link_gone "$br" || fail "bridge $br left"
	no_dns() { ! dns_listening "$1"; }
	wait_until 5 no_dns "$p.1" || fail "DNS still served on $p.1:53"
	assert_no_rule "$(subnet 0)"
	run e network rm lan
	assert_status 0
}

@test "--ip, --mac-address, and two networks: eth0 and eth1 with their addresses; refused addresses" {
	net a 0
	net b 1
	pa=$(prefix 0) pb=$(prefix 1)
	run e run --rm --network a --ip "$pa.50" --mac-address 92:d0:c6:0a:29:33 busybox sh -c 'ip -o -4 addr show dev eth0; cat /sys/class/net/eth0/address'
	assert_status 0
	assert_contains "$output" " $pa.50/24 "
	assert_contains "$output" "92:d0:c6:0a:29:33"

	for spec in "--network a --network b" "--network a,b"; do
		# shellcheck disable=SC2086
		e run -d --name two $spec busybox sleep 1000 >/dev/null
		run e exec two ip -o -4 addr show scope global
		grep -qE "eth0 +inet $pa\.[0-9]+/24" <<<"$output" || fail "$spec: eth0 not on a: $output"
		grep -qE "eth1 +inet $pb\.[0-9]+/24" <<<"$output" || fail "$spec: eth1 not on b: $output"
		run e inspect two
		assert_eq "$(jq -r '.[0].NetworkSettings.Networks | keys | join(" ")' <<<"$output")" "a b"
		assert_eq "$(jq -r '.[0].NetworkSettings.Networks.b.IPAddress' <<<"$output")" "$(ipv4_of two eth1)"
		e rm -f two >/dev/null
	done

	e run -d --name holder --network a --ip "$pa.60" busybox sleep 1000 >/dev/null
	run --separate-stderr e run --rm --network a --ip "$pa.60" busybox true
	assert_status 125
	assert_berth_line "$pa.60"
	run --separate-stderr e run --rm --network a --ip 10.77.0.5 busybox true
	assert_status 125
	assert_berth_line "10.77.0.5"
	run --separate-stderr e run --rm --network a --mac-address 92:d0:zz busybox true
	assert_status 125
	assert_berth_line '--mac-address "92:d0:zz"'
	# Aliases need a network with DNS; addresses a bridge network.
	run --separate-stderr e run --rm --network-alias nope busybox true
	assert_status 125
	assert_berth_line '--network-alias'
	run --separate-stderr e run --rm --network none --ip "$pa.61" busybox true
	assert_status 125
	assert_berth_line 'need a bridge network'
	run e ps -a --format '{{.Names}}'
	assert_eq "$output" "holder"
}

@test "an --internal network has no route out; an ordinary one routes through its gateway" {
	net inner 0 --internal
	net outer 1
	run e network inspect inner
	assert_eq "$(jq -r '.[0].internal' <<<"$output")" "true"
	run e run --rm --network inner busybox ip route
	assert_status 0
	assert_not_contains "$output" "default"
	assert_contains "$output" "$(subnet 0) dev eth0"
	run e run --rm --network outer busybox ip route
	assert_status 0
	assert_contains "$output" "default via $(prefix 1).1"
}

@test "network connect and disconnect: a running container gains and loses an interface, its address and alias" {
	net a 0
	net b 1
	pb=$(prefix 1)
	serve c --network a busybox
	run e network connect --ip "$pb.77" --alias extra b c
	assert_status 0
	run e exec c ip -o -4 addr show dev eth1
	assert_contains "$output" " $pb.77/24 "
	run e inspect c
	assert_eq "$(jq -r '.[0].NetworkSettings.Networks | keys | join(" ")' <<<"$output")" "a b"
	assert_contains "$(jq -c '.[0].NetworkSettings.Networks.b.Aliases' <<<"$output")" '"extra"'
	run e run --rm --network b busybox sh -c 'timeout 5 wget -q -O- http://extra/; timeout 5 wget -q -O- http://c/'
	assert_eq "$output" $'hello from c\nhello from c'

	veth=$(host_veth c eth1)
	[[ -n $veth ]] || fail "no host veth for eth1"
	brb=$(bridge_of b)
	run e network disconnect b c
	assert_status 0
	run e exec c ip link show eth1
	[[ $status != 0 ]] || fail "eth1 still there: $output"
	assert_eq "$(e inspect c | jq -r '.[0].NetworkSettings.Networks | keys | join(" ")')" "a"
	wait_until 5 veth_gone "$veth" || fail "veth left after disconnect: $(host_link "$veth")"
	wait_until 5 link_gone "$brb" || fail "bridge $brb left after its last container left"
	# The lease went too: the address can be given again.
	run e network connect --ip "$pb.77" b c
	assert_status 0
	assert_eq "$(ipv4_of c eth1)" "$pb.77"
	run e network disconnect -f b c
	assert_status 0

	run --separate-stderr e network connect a nosuchctr
	assert_status 125
	assert_berth_line 'nosuchctr'
}

# ---------------------------------------------------------------------- files

@test "/etc/hostname, /etc/hosts, /etc/resolv.conf: hostname, own line, --add-host, host.containers.internal, host nameservers" {
	e run -d --name files --hostname box --add-host db.local:127.0.0.2 --add-host other:10.89.254.9 busybox sleep 1000 >/dev/null
	run e exec files cat /etc/hostname
	assert_eq "$output" "box"
	assert_eq "$(e exec files hostname)" "box"
	addr=$(e exec files ip -o -4 addr show scope global | awk '{ sub(/\/.*/, "", $4); print $4; exit }')
	[[ -n $addr ]] || fail "no global IPv4 address in the container"
	hosts=$(squeeze "$(e exec files cat /etc/hosts)")
	for line in "127.0.0.2 db.local" "10.89.254.9 other" "$addr box files"; do
		grep -qxF "$line" <<<"$hosts" || fail "/etc/hosts has no line '$line':
$hosts"
	done
	grep -qE '^127\.0\.0\.1 (.* )?localhost( |$)' <<<"$hosts" || fail "no 127.0.0.1 localhost line: $hosts"
	grep -qE '^::1 (.* )?localhost( |$)' <<<"$hosts" || fail "no ::1 localhost line: $hosts"
	# host.containers.internal: how the container reaches the host, its
	# default gateway (as root the bridge's address, one of the host's own;
	# rootless pasta maps its gateway address to the host).
	hci=$(awk '$2 == "host.containers.internal" && $3 == "host.docker.internal" && NF == 3 { print $1 }' <<<"$hosts")
	[[ -n $hci ]] || fail "no host.containers.internal line: $hosts"
	assert_contains "$(e exec files ip route)" "default via $hci " "the container's routes"
	if [[ $BERTH_AS == root ]]; then
		grep -qxF "$hci" <(host_ipv4s) || fail "host.containers.internal is $hci, not an address of the host: $(host_ipv4s | tr '\n' ' ')"
	fi
	# The resolver uses it: db.local is 127.0.0.2 in the container's own loopback.
	run e exec files sh -c 'mkdir -p /w && echo via-hosts >/w/index.html && httpd -p 127.0.0.2:8080 -h /w && timeout 5 wget -q -O- http://db.local:8080/'
	assert_eq "$output" "via-hosts"

	# The host's nameservers without the loopback ones (8.8.8.8 and 8.8.4.4 when none is left).
	want=$(awk '$1 == "nameserver" && $2 !~ /^127\./ && $2 != "::1" { print $2 }' /etc/resolv.conf)
	[[ -n $want ]] || want=$'8.8.8.8\n8.8.4.4'
	run e exec files cat /etc/resolv.conf
	assert_eq "$(awk '$1 == "nameserver" { print $2 }' <<<"$output")" "$want" "nameservers"

	# No --hostname: the short id, on the container's own line too.
	e run -d --name plain busybox sleep 1000 >/dev/null
	id=$(e inspect --format '{{.Id}}' plain)
	assert_eq "$(e exec plain cat /etc/hostname)" "${id:0:12}"
	addr=$(e exec plain ip -o -4 addr show scope global | awk '{ sub(/\/.*/, "", $4); print $4; exit }')
	squeeze "$(e exec plain cat /etc/hosts)" | grep -qxF "$addr ${id:0:12} plain" || fail "no own line in plain's /etc/hosts"
}

@test "--dns, --dns-search, --dns-option replace the host's resolver settings" {
	run e run --rm --dns 10.89.254.53 --dns 10.89.254.54 --dns-search example.test --dns-option ndots:2 busybox cat /etc/resolv.conf
	assert_status 0
	assert_eq "$(awk '$1 == "nameserver" { print $2 }' <<<"$output")" $'10.89.254.53\n10.89.254.54'
	grep -qxE 'search +example\.test' <<<"$output" || fail "no search line: $output"
	grep -qE '^options (.* )?ndots:2( |$)' <<<"$output" || fail "no options line with ndots:2: $output"
	for ns in $(awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf); do
		assert_not_contains "$output" "nameserver $ns"
	done
}

@test "a user network's container: its own line names its aliases; DNS networks point at the gateway, --disable-dns ones at the host's nameservers" {
	net withdns 0
	net nodns 1 --disable-dns
	e run -d --name named --hostname hn --network withdns --network-alias al1 --network-alias al2 busybox sleep 1000 >/dev/null
	ip=$(ipv4_of named)
	hosts=$(squeeze "$(e exec named cat /etc/hosts)")
	grep -qxF "$ip hn named al1 al2" <<<"$hosts" || fail "no line '$ip hn named al1 al2' in:
$hosts"
	run e exec named cat /etc/resolv.conf
	assert_eq "$(awk '$1 == "nameserver" { print $2 }' <<<"$output")" "$(prefix 0).1"

	dns_listening "$(prefix 0).1" || fail "nothing serves DNS on $(prefix 0).1:53"

	e run -d --name plain --network nodns busybox sleep 1000 >/dev/null
	run e exec plain cat /etc/resolv.conf
	want=$(awk '$1 == "nameserver" && $2 !~ /^127\./ && $2 != "::1" { print $2 }' /etc/resolv.conf)
	[[ -n $want ]] || want=$'8.8.8.8\n8.8.4.4'
	assert_eq "$(awk '$1 == "nameserver" { print $2 }' <<<"$output")" "$want"
	assert_not_contains "$output" "dns.podman"
	! dns_listening "$(prefix 1).1" || fail "a DNS server answers on the --disable-dns network"
}

# ------------------------------------------------------------------- teardown

# end_container HOW PID — ends container c-HOW (process PID) the way HOW
# says: stop, rm -f, exit of a --rm container (it waits for /tmp/go), or
# kill -9 of its monitor followed by one berth command, which records it.
end_container() {
	local how=$1 pid=$2 monitor
	case $how in
	stop) e stop -t 5 "c-$how" >/dev/null ;;
	rm) e rm -f "c-$how" >/dev/null ;;
	exit)
		e exec "c-$how" touch /tmp/go
		wait_until 10 bash -c "! \"$BERTH\" --root \"$STATE\" --runroot \"$RUNROOT\" inspect c-$how >/dev/null 2>&1" ||
			fail "exit: the --rm container was not removed"
		;;
	kill9)
		monitor=$(e inspect --format '{{.State.ConmonPid}}' "c-$how")
		[[ $monitor -gt 0 ]] || fail "no monitor pid"
		kill -KILL "$monitor"
		wait_until 5 pid_dead "$pid" || fail "kill9: the container outlived its monitor"
		run e ps -a --format '{{.Names}} {{.Status}}'
		assert_contains "$output" "c-kill9 Exited"
		;;
	esac
}

@test "teardown (root): stop, rm -f, run --rm and a killed monitor leave no veth, rule, bridge or lease" {
	root_only "root's bridges are the host's (rootless: the rootless bridge teardown test)"
	net tear 0
	p=$(prefix 0)
	br=$(bridge_of tear)
	wait_cmd='trap "exit 0" TERM; while [ ! -e /tmp/go ]; do sleep 0.1; done'
	for how in stop rm exit kill9; do
		port=$(free_port)
		rmflag=()
		[[ $how == exit ]] && rmflag=(--rm)
		e run -d "${rmflag[@]}" --name "c-$how" --network tear --ip "$p.50" -p "127.0.0.1:$port:80" busybox sh -c "$wait_cmd" >/dev/null ||
			fail "$how: the run with --ip $p.50 failed (lease of the previous container not released?)"
		id=$(e inspect --format '{{.Id}}' "c-$how")
		pid=$(e inspect --format '{{.State.Pid}}' "c-$how")
		veth=$(host_veth "c-$how")
		[[ -n $veth ]] || fail "$how: no host veth"
		assert_contains "$(host_link "$veth")" "master $br"
		rules=$(fw_rules)
		[[ $rules == *"$(subnet 0)"* ]] || fail "$how: no rule names $(subnet 0) while the container runs:
$rules"
		[[ $rules == *"$id"* ]] || fail "$how: no rule names the container id while it publishes a port"
		end_container "$how" "$pid"
		wait_until 5 pid_dead "$pid" || fail "$how: container process $pid still alive"
		veth_gone "$veth" || fail "$how: veth left: $(host_link "$veth")"
		link_gone "$br" || fail "$how: bridge $br left"
		assert_no_rule "$id"
		assert_no_rule "$(subnet 0)"
		assert_no_rule "$p.50"
		wait_until 5 port_free "$port" || fail "$how: 127.0.0.1:$port still held"
	done
	# The last lease went too.
	run e run --rm --network tear --ip "$p.50" busybox ip -o -4 addr show dev eth0
	assert_status 0
	assert_contains "$output" " $p.50/24 "
	# c-stop and c-kill9 are still there (exited): -f removes them with it.
	run e network rm -f tear
	assert_status 0
	assert_eq "$output" "tear"
	run e ps -a -q
	assert_eq "$output" ""
	link_gone "$br" || fail "bridge $br left"
}

@test "teardown (rootless): stop, rm -f, run --rm and a killed monitor end the container's pasta and free its port" {
	[[ $BERTH_AS == rootless ]] || skip "pasta is the rootless network (root: the teardown test above)"
	port=$(free_port)
	for how in stop rm exit kill9; do
		rmflag=()
		[[ $how == exit ]] && rmflag=(--rm)
		e run -d "${rmflag[@]}" --name "c-$how" -e WHO="$how" -p "127.0.0.1:$port:80" busybox sh -c \
			'mkdir -p /www && echo "hello from $WHO" >/www/index.html && httpd -p 80 -h /www && trap "exit 0" TERM; while [ ! -e /tmp/go ]; do sleep 0.1; done' >/dev/null ||
			fail "$how: could not publish 127.0.0.1:$port again"
		pid=$(e inspect --format '{{.State.Pid}}' "c-$how")
		wait_until 10 host_serves "$port" "hello from $how" || fail "$how: 127.0.0.1:$port: $(host_get "$port")"
		new=$(pastas_for "$port")
		[[ -n $new ]] || fail "$how: no pasta process forwards 127.0.0.1:$port: $(pgrep -a -u "$(id -u)" -f pasta)"
		end_container "$how" "$pid"
		wait_until 5 pid_dead "$pid" || fail "$how: container process $pid still alive"
		for p in $new; do
			wait_until 5 pid_dead "$p" || fail "$how: pasta $p still runs: $(tr '\0' ' ' <"/proc/$p/cmdline")"
		done
		wait_until 5 port_free "$port" || fail "$how: 127.0.0.1:$port still held"
	done
}

@test "teardown (rootless bridge): stop, rm -f, run --rm and a killed monitor free the port, lease and rootlessport; the namespace goes" {
	[[ $BERTH_AS == rootless ]] || skip "rootless bridge networks (root: the teardown test above)"
	command -v /usr/lib/podman/rootlessport >/dev/null || [[ -x /usr/libexec/podman/rootlessport ]] ||
		skip "podman's rootlessport is not installed: published ports on rootless bridge networks need it"
	net tear 0
	p=$(prefix 0)
	wait_cmd='mkdir -p /www && echo "hello from $WHO" >/www/index.html && httpd -p 80 -h /www && trap "exit 0" TERM; while [ ! -e /tmp/go ]; do sleep 0.1; done'
	for how in stop rm exit kill9; do
		port=$(free_port)
		rmflag=()
		[[ $how == exit ]] && rmflag=(--rm)
		e run -d "${rmflag[@]}" --name "c-$how" -e WHO="$how" --network tear --ip "$p.50" -p "127.0.0.1:$port:80" busybox sh -c "$wait_cmd" >/dev/null ||
			fail "$how: the run with --ip $p.50 failed (lease of the previous container not released?)"
		pid=$(e inspect --format '{{.State.Pid}}' "c-$how")
		holder=$(holder_pid)
		[[ -n $holder ]] || fail "$how: no rootless network namespace"
		wait_until 10 host_serves "$port" "hello from $how" || fail "$how: 127.0.0.1:$port: $(host_get "$port")"
		forwarder=$(pgrep -u "$(id -u)" -x rootlessport | while read -r f; do pid_alive "$f" && echo "$f"; done | head -1)
		[[ -n $forwarder ]] || fail "$how: no rootlessport process"
		veth=$(host_veth "c-$how")
		[[ -n $veth ]] || fail "$how: no veth in the rootless network namespace"
		end_container "$how" "$pid"
		wait_until 5 pid_dead "$pid" || fail "$how: container process $pid still alive"
		wait_until 5 pid_dead "$forwarder" || fail "$how: rootlessport $forwarder still runs: $(ps -o pid,ppid,stat,cmd -u "$(id -u)")"
		wait_until 5 port_free "$port" || fail "$how: 127.0.0.1:$port still held"
		wait_until 5 pid_dead "$holder" || fail "$how: the rootless network namespace outlived its last container"
		[[ -z $(ls -A "$RUNROOT/@rootless-netns/ns") ]] || fail "$how: namespace files left: $(ls "$RUNROOT/@rootless-netns/ns")"
	done
	run e network rm -f tear
	assert_status 0
	run e ps -a -q
	assert_eq "$output" ""
}
