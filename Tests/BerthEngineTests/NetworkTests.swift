#if canImport(Glibc)
import Glibc
#endif
import Testing
import FoundationEssentials
import BerthEngine
import BerthImage
import BerthTestSupport

@Suite("Networks")
struct NetworkTests {
    @Test("addresses and subnets: parse, print, contain, overlap")
    func addresses() throws {
        #expect(IPAddress("10.88.0.2")?.description == "10.88.0.2")
        #expect(IPAddress("fd00::1")?.description == "fd00::1")
        #expect(IPAddress("10.88.0") == nil && IPAddress("nonsense") == nil)
        #expect(IPAddress("127.0.0.53")!.isLoopback && IPAddress("::1")!.isLoopback && !IPAddress("10.0.0.1")!.isLoopback)
        let subnet = try #require(Subnet("10.89.3.77/24"))
        #expect(subnet.description == "10.89.3.0/24")
        #expect(subnet.host(1).description == "10.89.3.1" && subnet.last.description == "10.89.3.255")
        #expect(subnet.contains(IPAddress("10.89.3.200")!) && !subnet.contains(IPAddress("10.89.4.1")!))
        #expect(subnet.overlaps(Subnet("10.89.0.0/16")!) && !subnet.overlaps(Subnet("10.89.4.0/24")!))
        #expect(!subnet.overlaps(Subnet("fd00::/64")!))
        #expect(Subnet("10.0.0.0/33") == nil && Subnet("10.0.0.0") == nil)
        let v6 = try #require(Subnet("fd12:3456::99/64"))
        #expect(v6.description == "fd12:3456::/64" && v6.host(2).description == "fd12:3456::2")
    }

    @Test("rootlessport's stdin: podman's Config keys, netavark's port shape; a rootless netns path is reached through its holder")
    func rootlessport() throws {
        let config = RootlessportConfig(ports: [try PortMapping.parse("127.0.0.1:8080:80/udp")], netNSPath: "/proc/7/ns/net",
                                        exitFD: 3, readyFD: 4, tmpDir: "/run/x", childIP: "10.88.0.2", containerID: "abc")
        // What rootlessport (podman 4.3's pkg/rootlessport Config) reads.
        struct Mapping: Decodable, Equatable {
            var host_ip: String, container_port: Int, host_port: Int, range: Int, `protocol`: String
        }
        struct Config: Decodable {
            var Mappings: [Mapping], NetNSPath: String, ExitFD: Int, ReadyFD: Int, TmpDir: String, ChildIP: String
            var ContainerID: String, RootlessCNI: Bool
        }
        let decoded = try JSONDecoder().decode(Config.self, from: try JSONEncoder().encode(config))
        #expect(decoded.Mappings == [Mapping(host_ip: "127.0.0.1", container_port: 80, host_port: 8080, range: 1, protocol: "udp")])
        #expect(decoded.NetNSPath == "/proc/7/ns/net" && decoded.ExitFD == 3 && decoded.ReadyFD == 4 && decoded.ChildIP == "10.88.0.2")

        var state = NetworkState()
        state.netns = "/run/berth/@rootless-netns/ns/abc"
        #expect(state.joinPath == "/run/berth/@rootless-netns/ns/abc")
        state.holderPid = 42
        #expect(state.joinPath == "/proc/42/root/run/berth/@rootless-netns/ns/abc")
    }

    @Test("-p forms, ranges and errors")
    func ports() throws {
        let all = try PortMapping.parse("8080:80")
        #expect(all == PortMapping(hostIP: "", hostPort: 8080, containerPort: 80, proto: "tcp"))
        #expect(all.display == "0.0.0.0:8080->80/tcp")
        let local = try PortMapping.parse("127.0.0.1:5353:53/udp")
        #expect(local.hostIP == "127.0.0.1" && local.proto == "udp" && local.display == "127.0.0.1:5353->53/udp")
        #expect(try PortMapping.parse("80").hostPort == 0)
        #expect(try PortMapping.parse("127.0.0.1::80").hostPort == 0)
        let v6 = try PortMapping.parse("[::1]:8080:80")
        #expect(v6.hostIP == "::1" && v6.display == "[::1]:8080->80/tcp")
        let range = try PortMapping.parse("9000-9002:80-82")
        #expect(range.range == 3 && range.singles.map(\.hostPort) == [9000, 9001, 9002] && range.singles.last?.containerPort == 82)
        for bad in ["", "0", "70000", "80/sctp", "1.2.3:80:80", "9000-9001:80", "80-81", "a:b:c:d", "[::1:80:80"] {
            #expect(throws: EngineError.self, "\(bad)") { try PortMapping.parse(bad) }
        }
        #expect(try PortMapping.exposed("8000-8001/udp").map(\.0) == [8000, 8001])
    }

    @Test("a free host port is found, and a listened-on one is reported taken")
    func reservation() throws {
        let assigned = try PortReservation.assignHostPorts([PortMapping(hostIP: "127.0.0.1", hostPort: 0, containerPort: 80, proto: "tcp")])
        #expect(assigned[0].hostPort > 0)
        let held = try PortReservation.reserve(assigned)
        defer { for fd in held { close(fd) } }
        let error = #expect(throws: EngineError.self) { try PortReservation.reserve(assigned) }
        #expect(error?.message == "port 127.0.0.1:\(assigned[0].hostPort)/tcp is already in use")
    }

    @Test("/etc/hosts and /etc/resolv.conf as podman writes them")
    func etcFiles() {
        var config = ContainerConfig()
        config.hostname = "box"
        config.addHosts = ["db:10.1.2.3", "gw:host-gateway"]
        config.networks = [NetworkRequest(name: "net1")]
        config.networks[0].aliases = ["web"]
        let hosts = EtcFiles.hosts(config: config, name: "app", addresses: ["10.89.0.2"], hostAddress: "10.89.0.1", hostFile: nil)
        #expect(hosts == """
            127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4
            ::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6
            10.1.2.3\tdb
            10.89.0.1\tgw
            10.89.0.2\tbox app web
            10.89.0.1\thost.containers.internal host.docker.internal

            """)
        let host = "search example.com\nnameserver 127.0.0.53\nnameserver 10.0.0.2\noptions edns0\n"
        #expect(EtcFiles.resolvConf(config: config, hostText: host, networkServers: [], searchDomains: [], keepLoopback: false)
            == "search example.com\nnameserver 10.0.0.2\noptions edns0\n")
        #expect(EtcFiles.resolvConf(config: config, hostText: "nameserver 127.0.0.1\n", networkServers: [], searchDomains: [], keepLoopback: false)
            == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
        #expect(EtcFiles.resolvConf(config: config, hostText: host, networkServers: ["10.89.0.1"], searchDomains: ["dns.podman"], keepLoopback: false)
            == "search dns.podman example.com\nnameserver 10.89.0.1\noptions edns0\n")
        config.dns = ["9.9.9.9"]
        config.dnsSearch = ["."]
        config.dnsOptions = ["ndots:2"]
        #expect(EtcFiles.resolvConf(config: config, hostText: host, networkServers: [], searchDomains: [], keepLoopback: false)
            == "nameserver 9.9.9.9\noptions edns0 ndots:2\n")
    }

    @Test("network create: names, free subnets, overlaps, interfaces; remove")
    func store() throws {
        let dir = TemporaryDirectory("networks")
        defer { dir.remove() }
        let store = NetworkStore(images: ImageStore(root: dir.path))
        #expect(store.list().map(\.name) == ["berth"])
        #expect(try store.load("berth").subnets?.first?.subnet == "10.88.0.0/16")
        let first = try store.create(NetworkCreateOptions(name: "one"))
        let firstSubnet = try #require(first.parsedSubnets.first?.subnet)
        #expect(firstSubnet.prefix == 24 && Subnet("10.0.0.0/8")!.contains(firstSubnet.address))
        #expect(first.dnsEnabled && first.networkInterface?.hasPrefix("berth") == true && first.id.count == 64)
        let second = try store.create(NetworkCreateOptions(name: "two"))
        #expect(second.parsedSubnets.first?.subnet != firstSubnet)
        #expect(second.networkInterface != first.networkInterface)
        var overlapping = NetworkCreateOptions(name: "three")
        overlapping.subnets = [firstSubnet.description]
        let error = #expect(throws: EngineError.self) { try store.create(overlapping) }
        #expect(error?.message == "subnet \(firstSubnet) overlaps with network \"one\" (\(firstSubnet))")
        #expect(throws: EngineError.self) { try store.create(NetworkCreateOptions(name: "one")) }
        #expect(throws: EngineError.self) { try store.create(NetworkCreateOptions(name: "bad/name")) }
        var v6 = NetworkCreateOptions(name: "six")
        v6.subnets = ["10.200.9.0/24"]
        v6.gateways = ["10.200.9.254"]
        v6.ipv6 = true
        v6.internal = true
        let six = try store.create(v6)
        #expect(six.ipv6Enabled && six.internal && six.subnets?.first?.gateway == "10.200.9.254")
        #expect(six.parsedSubnets.contains { $0.subnet.isV6 && $0.subnet.prefix == 64 })
        #expect(store.list().map(\.name) == ["berth", "one", "six", "two"])
        try store.remove("two")
        #expect(throws: EngineError.self) { try store.remove("two") }
        #expect(throws: EngineError.self) { try store.remove("berth") }
    }

    @Test("addresses are leased in order, requested ones honoured, released per container")
    func leases() throws {
        let dir = TemporaryDirectory("leases")
        defer { dir.remove() }
        let store = NetworkStore(images: ImageStore(root: dir.path))
        var request = NetworkCreateOptions(name: "small")
        request.subnets = ["10.201.0.0/29"]
        let network = try store.create(request)
        #expect(try store.allocate(network, container: "a", requested: []).map(\.description) == ["10.201.0.2"])
        #expect(try store.allocate(network, container: "b", requested: []).map(\.description) == ["10.201.0.3"])
        #expect(try store.allocate(network, container: "c", requested: [IPAddress("10.201.0.6")!]).map(\.description) == ["10.201.0.6"])
        #expect(throws: EngineError.self) { try store.allocate(network, container: "d", requested: [IPAddress("10.201.0.6")!]) }
        #expect(throws: EngineError.self) { try store.allocate(network, container: "d", requested: [IPAddress("10.201.0.1")!]) }
        // A second start of the same container keeps one address.
        #expect(try store.allocate(network, container: "a", requested: []).map(\.description) == ["10.201.0.2"])
        #expect(try store.allocate(network, container: "d", requested: []).map(\.description) == ["10.201.0.4"])
        #expect(try store.allocate(network, container: "e", requested: []).map(\.description) == ["10.201.0.5"])
        #expect(throws: EngineError.self) { try store.allocate(network, container: "f", requested: []) }
        store.release(container: "b")
        #expect(store.leases(of: "b").isEmpty)
        #expect(try store.allocate(network, container: "f", requested: []).map(\.description) == ["10.201.0.3"])
    }
}
