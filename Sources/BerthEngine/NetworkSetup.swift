#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthImage
import BerthOCI
import BerthOS
import BerthRuntime
import CBerth

// MARK: - the plan, at create

/// `--network` and its companion flags → the container's network config.
package struct NetworkPlan {
    /// Resolves the mode and the networks; checks names, addresses and ports.
    package static func resolve(_ options: CreateOptions, config: inout ContainerConfig, rootless: Bool,
                                store: ImageStore) throws(EngineError) {
        var modes = options.networks.flatMap { $0.split(separator: ",").map(String.init) }.filter { !$0.isEmpty }
        if modes.isEmpty {
            // pasta needs a host interface with a route out ("External interface
            // not usable" otherwise): an offline host's rootless default is
            // none, unless ports are published (then pasta says why it fails).
            let offline = rootless && options.publish.isEmpty && !options.publishAll && !EtcFiles.hostHasDefaultRoute()
            modes = [rootless ? (offline ? "none" : "pasta") : "bridge"]
        }
        let first = modes[0]
        let special = ["none", "host", "bridge", "pasta", "slirp4netns", "private", "default"]
        func isMode(_ text: String) -> Bool {
            special.contains(text) || text.hasPrefix("container:") || text.hasPrefix("ns:") || text.hasPrefix("pasta:")
                || text.hasPrefix("slirp4netns:")
        }
        if modes.count > 1, let other = modes.first(where: { isMode($0) && $0 != "bridge" }) {
            throw EngineError(.invalidArgument, "--network \(other) cannot be combined with other networks")
        }
        var mode = first
        if first == "private" || first == "default" { mode = rootless ? "pasta" : "bridge" }
        if first.hasPrefix("pasta:") || first.hasPrefix("slirp4netns:") {
            let parts = first.split(separator: ":", maxSplits: 1).map(String.init)
            mode = parts[0]
            config.networkOptions = parts[1].split(separator: ",").map(String.init)
        }
        let networks = NetworkStore(images: store)
        if !isMode(first) || first == "bridge" || mode == "bridge" {
            mode = "bridge"
            let names = modes.map { $0 == "bridge" ? NetworkStore.defaultName : $0 }
            for name in names where isMode(name) && name != NetworkStore.defaultName {
                throw EngineError(.invalidArgument, "--network \(name) cannot be combined with other networks")
            }
            var requests: [NetworkRequest] = []
            for name in names where !requests.contains(where: { $0.name == name }) {
                let network = try networks.load(name)
                if rootless && options.userns == "keep-id" {
                    throw EngineError(.invalidArgument, "--userns=keep-id cannot be combined with bridge network \"\(network.name)\": rootless bridge containers share the rootless network's user namespace")
                }
                var request = NetworkRequest(name: network.name)
                request.aliases = options.aliases
                requests.append(request)
            }
            // --ip and --mac-address go to the first network, as podman's.
            if let ip = options.ip {
                guard let address = IPAddress(ip) else { throw EngineError(.invalidArgument, "--ip \"\(ip)\": not an IP address") }
                let network = try networks.load(requests[0].name)
                guard network.parsedSubnets.contains(where: { $0.subnet.contains(address) }) else {
                    throw EngineError(.invalidArgument, "--ip \(ip) is not in a subnet of network \(network.name)")
                }
                requests[0].ips = [address.description]
            }
            if let mac = options.mac {
                guard Self.isMAC(mac) else { throw EngineError(.invalidArgument, "--mac-address \"\(mac)\": expected six hex bytes such as 92:d0:c6:0a:29:33") }
                requests[0].mac = mac.lowercased()
            }
            if !options.aliases.isEmpty, requests.allSatisfy({ $0.name == NetworkStore.defaultName }) {
                throw EngineError(.invalidArgument, "--network-alias needs a user-defined network (the default network has no DNS)")
            }
            config.networks = requests
        } else {
            if options.ip != nil || options.mac != nil || !options.aliases.isEmpty {
                throw EngineError(.invalidArgument, "--ip, --mac-address and --network-alias need a bridge network, not --network \(first)")
            }
            if mode.hasPrefix("container:") {
                let target = String(mode.dropFirst("container:".count))
                let other = try ContainerStore(images: store).lookup(target)
                mode = "container:" + other.id
            } else if mode.hasPrefix("ns:") {
                let path = String(mode.dropFirst(3))
                guard path.hasPrefix("/"), Files.exists(path) else {
                    throw EngineError(.invalidArgument, "--network ns:\(path): no such network namespace file")
                }
            } else if mode == "pasta", Tools.pasta == nil {
                throw EngineError(.invalidArgument, "--network pasta: pasta is not installed (Debian package passt)")
            } else if mode == "slirp4netns", Tools.slirp4netns == nil {
                throw EngineError(.invalidArgument, "--network slirp4netns: slirp4netns is not installed")
            } else if !special.contains(mode) {
                throw EngineError(.invalidArgument, "--network \"\(first)\": unknown network mode")
            }
        }
        config.network = mode

        // Ports: -p, then -P's exposed ports.
        var exposed = config.exposedPorts
        for text in options.expose {
            for (port, proto) in try PortMapping.exposed(text) where !exposed.contains("\(port)/\(proto)") { exposed.append("\(port)/\(proto)") }
        }
        config.exposedPorts = exposed
        var ports: [PortMapping] = []
        for text in options.publish { ports.append(try PortMapping.parse(text)) }
        if options.publishAll {
            for entry in exposed {
                for (port, proto) in (try? PortMapping.exposed(entry)) ?? [] where !ports.contains(where: {
                    $0.proto == proto && port >= $0.containerPort && port < $0.containerPort + $0.range
                }) {
                    ports.append(PortMapping(hostIP: "", hostPort: 0, containerPort: port, proto: proto))
                }
            }
        }
        if !ports.isEmpty {
            guard mode == "bridge" || mode == "pasta" else {
                throw EngineError(.invalidArgument, "-p and -P need a bridge network or pasta, not --network \(mode.hasPrefix("container:") ? "container" : mode)")
            }
            ports = try PortReservation.assignHostPorts(ports)
        }
        config.ports = ports
        for server in options.dns where IPAddress(server) == nil {
            throw EngineError(.invalidArgument, "--dns \"\(server)\": not an IP address")
        }
        config.dns = options.dns
        config.dnsSearch = options.dnsSearch
        config.dnsOptions = options.dnsOptions
        for entry in options.addHosts {
            guard let colon = entry.firstIndex(of: ":"), colon != entry.startIndex,
                  IPAddress(String(entry[entry.index(after: colon)...])) != nil || entry[entry.index(after: colon)...] == "host-gateway" else {
                throw EngineError(.invalidArgument, "--add-host \"\(entry)\": expected HOST:IP")
            }
        }
        config.addHosts = options.addHosts
    }

    static func isMAC(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { $0.count == 2 && UInt8($0, radix: 16) != nil }
    }

    /// The bind mounts of /etc/hosts, /etc/resolv.conf and /etc/hostname
    /// (files the engine writes at each start), unless the user mounts there.
    package static func etcMounts(directory: String, mounts: [Mount]) -> [Mount] {
        ["hosts", "resolv.conf", "hostname"].compactMap { name in
            let destination = "/etc/" + name
            if mounts.contains(where: { $0.destination == destination || $0.destination == "/etc" }) { return nil }
            return Mount(destination: destination, type: "bind", source: directory + "/" + name, options: ["rbind", "rprivate"])
        }
    }
}

/// Where the helpers are (Debian puts netavark and aardvark-dns in /usr/lib/podman).
package enum Tools {
    static let libexec = ["/usr/local/libexec/podman", "/usr/local/lib/podman", "/usr/libexec/podman", "/usr/lib/podman"]
    static let bin = ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]

    static func find(_ name: String, in directories: [String]) -> String? {
        directories.map { $0 + "/" + name }.first { access($0, X_OK) == 0 }
    }

    package static var netavark: String? { find("netavark", in: libexec + bin) }
    package static var aardvark: String? { find("aardvark-dns", in: libexec + bin) }
    package static var pasta: String? { find("pasta", in: bin) }
    package static var slirp4netns: String? { find("slirp4netns", in: bin) }
    package static var rootlessport: String? { find("rootlessport", in: libexec) }
}

// MARK: - files

/// /etc/hosts, /etc/resolv.conf and /etc/hostname of a container.
package enum EtcFiles {
    package static func hosts(config: ContainerConfig, name: String, addresses: [String], hostAddress: String?,
                              hostFile: String?) -> String {
        var lines: [String] = []
        if let hostFile {
            lines.append(hostFile.hasSuffix("\n") ? String(hostFile.dropLast()) : hostFile)
        } else {
            lines.append("127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4")
            lines.append("::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6")
        }
        for entry in config.addHosts {
            guard let colon = entry.firstIndex(of: ":") else { continue }
            var ip = String(entry[entry.index(after: colon)...])
            if ip == "host-gateway" { ip = hostAddress ?? "127.0.0.1" }
            lines.append("\(ip)\t\(entry[..<colon])")
        }
        var names = [config.hostname]
        if name != config.hostname { names.append(name) }
        names += config.networks.flatMap(\.aliases).filter { !names.contains($0) }
        if hostFile == nil {
            if addresses.isEmpty {
                lines.append("127.0.1.1\t" + names.joined(separator: " "))
            } else {
                for address in addresses { lines.append("\(address)\t" + names.joined(separator: " ")) }
            }
        }
        if let hostAddress { lines.append("\(hostAddress)\thost.containers.internal host.docker.internal") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The host's resolver configuration (systemd-resolved's real one behind its stub).
    static func hostResolvConf() -> String {
        let text = (try? Files.readString("/etc/resolv.conf")) ?? ""
        if text.contains("nameserver 127.0.0.53"), let real = try? Files.readString("/run/systemd/resolve/resolv.conf") { return real }
        return text
    }

    package static func resolvConf(config: ContainerConfig, hostText: String, networkServers: [String], searchDomains: [String],
                                   keepLoopback: Bool) -> String {
        var servers: [String] = []
        var search: [String] = []
        var options: [String] = []
        for line in hostText.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let key = fields.first else { continue }
            switch key {
            case "nameserver" where fields.count > 1: servers.append(fields[1])
            case "search", "domain": search += fields.dropFirst()
            case "options": options += fields.dropFirst()
            default: break
            }
        }
        if !keepLoopback {
            // The host's loopback resolvers are not the container's (podman drops them too).
            servers.removeAll { IPAddress($0)?.isLoopback ?? true }
            if servers.isEmpty { servers = ["8.8.8.8", "8.8.4.4"] }
        }
        // On networks with aardvark-dns it answers, and forwards to --dns servers.
        if !config.dns.isEmpty { servers = config.dns }
        if !networkServers.isEmpty { servers = networkServers }
        search = searchDomains + search.filter { !searchDomains.contains($0) }
        if !config.dnsSearch.isEmpty { search = config.dnsSearch == ["."] ? [] : config.dnsSearch }
        options += config.dnsOptions.filter { !options.contains($0) }
        var out = ""
        if !search.isEmpty { out += "search " + search.joined(separator: " ") + "\n" }
        for server in servers { out += "nameserver \(server)\n" }
        if !options.isEmpty { out += "options " + options.joined(separator: " ") + "\n" }
        return out
    }

    /// Whether the host has a default route (IPv4 or IPv6), as pasta needs.
    package static func hostHasDefaultRoute() -> Bool {
        if hostDefaultRoute().gateway != nil { return true }
        guard let text = try? Files.readString("/proc/net/ipv6_route") else { return false }
        // Destination ::/0 (32 zeros, prefix 00), not via the loopback device.
        return text.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            return fields.count >= 10 && fields[0] == Substring(String(repeating: "0", count: 32)) && fields[1] == "00" && fields[9] != "lo"
        }
    }

    /// The host's source address and gateway for its default IPv4 route.
    static func hostDefaultRoute() -> (address: String?, gateway: String?) {
        guard let text = try? Files.readString("/proc/net/route") else { return (nil, nil) }
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 8, fields[1] == "00000000", let gateway = UInt32(fields[2], radix: 16) else { continue }
            let gatewayText = IPAddress(value: UInt128(UInt32(bigEndian: gateway)), isV6: false).description
            return (interfaceAddress(String(fields[0])), gatewayText)
        }
        return (nil, nil)
    }

    static func interfaceAddress(_ interface: String) -> String? {
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&list) == 0 else { return nil }
        defer { freeifaddrs(list) }
        var entry = list
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET),
                  String(cString: current.pointee.ifa_name) == interface else { continue }
            let ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            return IPAddress(value: UInt128(ip), isV6: false).description
        }
        return nil
    }
}

// MARK: - netavark's input and output

struct NetavarkInput: Encodable {
    var containerID: String
    var containerName: String
    var portMappings: [Port]?
    var networks: [String: PerNetwork]
    var networkInfo: [String: NetworkConfig]
    var dnsServers: [String]?

    struct PerNetwork: Encodable {
        var staticIPs: [String]
        var aliases: [String]
        var interfaceName: String
        var staticMAC: String?
        enum CodingKeys: String, CodingKey {
            case aliases
            case staticIPs = "static_ips"
            case interfaceName = "interface_name"
            case staticMAC = "static_mac"
        }
    }

    struct Port: Encodable {
        var hostIP: String
        var containerPort: UInt16
        var hostPort: UInt16
        var range: UInt16
        var proto: String
        enum CodingKeys: String, CodingKey {
            case range
            case hostIP = "host_ip"
            case containerPort = "container_port"
            case hostPort = "host_port"
            case proto = "protocol"
        }
    }

    static func ports(_ mappings: [PortMapping]) -> [Port]? {
        mappings.isEmpty ? nil : mappings.map {
            Port(hostIP: $0.hostIP, containerPort: $0.containerPort, hostPort: $0.hostPort, range: $0.range, proto: $0.proto)
        }
    }

    enum CodingKeys: String, CodingKey {
        case networks
        case containerID = "container_id"
        case containerName = "container_name"
        case portMappings = "port_mappings"
        case networkInfo = "network_info"
        case dnsServers = "dns_servers"
    }
}

/// rootlessport's stdin (podman's pkg/rootlessport Config): the mappings
/// in netavark's shape, the network namespace to connect from, and its
/// ready and exit descriptors (slirp4netns's conventions).
package struct RootlessportConfig: Encodable {
    var mappings: [NetavarkInput.Port]
    var netNSPath: String
    var exitFD: Int32
    var readyFD: Int32
    var tmpDir: String
    var childIP: String
    var containerID: String
    var rootlessCNI = false

    package init(ports: [PortMapping], netNSPath: String, exitFD: Int32, readyFD: Int32, tmpDir: String,
                 childIP: String, containerID: String) {
        self.init(mappings: NetavarkInput.ports(ports) ?? [], netNSPath: netNSPath, exitFD: exitFD, readyFD: readyFD,
                  tmpDir: tmpDir, childIP: childIP, containerID: containerID)
    }

    init(mappings: [NetavarkInput.Port], netNSPath: String, exitFD: Int32, readyFD: Int32, tmpDir: String,
         childIP: String, containerID: String) {
        self.mappings = mappings
        self.netNSPath = netNSPath
        self.exitFD = exitFD
        self.readyFD = readyFD
        self.tmpDir = tmpDir
        self.childIP = childIP
        self.containerID = containerID
    }
    enum CodingKeys: String, CodingKey {
        case mappings = "Mappings"
        case netNSPath = "NetNSPath"
        case exitFD = "ExitFD"
        case readyFD = "ReadyFD"
        case tmpDir = "TmpDir"
        case childIP = "ChildIP"
        case containerID = "ContainerID"
        case rootlessCNI = "RootlessCNI"
    }
}

extension NetworkState.Interface {
    /// What netavark reports for it (nil: only the names).
    init(network: String, name: String, reported: NetavarkStatus.Interface?) {
        self.init(network: network, name: name)
        mac = reported?.macAddress ?? ""
        addresses = reported?.subnets?.map(\.ipnet) ?? []
        gateways = reported?.subnets?.compactMap(\.gateway) ?? []
    }
}

struct NetavarkStatus: Decodable {
    var dnsSearchDomains: [String]?
    var dnsServerIPs: [String]?
    var interfaces: [String: Interface]?

    struct Interface: Decodable {
        var macAddress: String?
        var subnets: [Address]?
        enum CodingKeys: String, CodingKey {
            case subnets
            case macAddress = "mac_address"
        }
    }

    struct Address: Decodable {
        var ipnet: String
        var gateway: String?
    }

    enum CodingKeys: String, CodingKey {
        case interfaces
        case dnsSearchDomains = "dns_search_domains"
        case dnsServerIPs = "dns_server_ips"
    }
}

// MARK: - setup and teardown

/// A running container's network: made before its launch, the helper
/// (pasta, slirp4netns) started once its namespaces exist, undone when it
/// ends. Owned by the process that launches the container.
package final class NetworkSession: @unchecked Sendable {
    let engine: Engine
    let container: Container
    /// Host ports held bound while netavark forwards them.
    var reserved: [Int32] = []
    var helper: pid_t = 0
    var helperPidfd: Int32 = -1
    var helperExitFD: FileDescriptor?
    private var done = false

    init(engine: Engine, container: Container) {
        self.engine = engine
        self.container = container
    }

    /// After clone, before the container's process execs: pasta or slirp4netns.
    func attach(pid: pid_t) throws(RuntimeError) {
        let mode = container.config.network
        if mode == "none" {
            // As docker and podman leave it: 127.0.0.1 works.
            if berth_loopback_up(pid, engine.rootless ? 1 : 0) != 0 {
                throw RuntimeError(.failed, "bring up lo in the container's network namespace: \(Errno.current)")
            }
            return
        }
        guard mode == "pasta" || mode == "slirp4netns" else { return }
        do {
            if mode == "pasta" { try startPasta(pid) } else { try startSlirp(pid) }
        } catch {
            throw RuntimeError(.failed, error.message)
        }
        _ = try? engine.containers.update(container.id) { (record) throws(EngineError) in
            var state = record.state.network ?? NetworkState()
            state.ownerPid = getpid()
            state.ownerStartTime = processStartTime(getpid()) ?? 0
            state.helperPid = self.helper
            state.helperStartTime = processStartTime(self.helper) ?? 0
            record.state.network = state
        }
    }

    private func spawnTied(_ path: String, _ arguments: [String], stderr: Int32, keep: [Int32]) throws(EngineError) -> pid_t {
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = Engine.environment().map { strdup($0) } + [nil]
        defer { for p in argv { free(p) }; for p in envp { free(p) } }
        let pid = keep.withUnsafeBufferPointer { berth_spawn_tied(path, &argv, &envp, -1, stderr, stderr, $0.baseAddress, Int32($0.count)) }
        if pid < 0 { throw EngineError(.failed, "start \(path): \(Errno.current)") }
        return pid
    }

    /// pasta in the foreground, our child: it writes its pid to a fifo once
    /// the namespace is configured, which is our sign to go on.
    private func startPasta(_ pid: pid_t) throws(EngineError) {
        guard let pasta = Tools.pasta else { throw EngineError(.failed, "pasta is not installed (Debian package passt)") }
        let directory = engine.containers.path(container.id)
        let fifo = directory + "/pasta.ready"
        _ = unlink(fifo)
        guard mkfifo(fifo, 0o600) == 0 else { throw EngineError(.failed, "mkfifo \(fifo): \(Errno.current)") }
        defer { _ = unlink(fifo) }
        guard let ready = try? FileDescriptor.open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC) else {
            throw EngineError(.failed, "open \(fifo): \(Errno.current)")
        }
        defer { ready.close() }
        let logPath = directory + "/pasta.log"
        let log = try? FileDescriptor.open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o600)
        defer { log?.close() }
        var arguments = [pasta, "--config-net", "--foreground", "--quiet", "--pid", fifo]
        var tcp: [String] = []
        var udp: [String] = []
        for mapping in container.config.ports {
            let host = mapping.hostIP.isEmpty ? "" : mapping.hostIP + "/"
            let spec = mapping.range == 1 ? "\(host)\(mapping.hostPort):\(mapping.containerPort)"
                : "\(host)\(mapping.hostPort)-\(mapping.hostPort + mapping.range - 1):\(mapping.containerPort)-\(mapping.containerPort + mapping.range - 1)"
            if mapping.proto == "udp" { udp.append(spec) } else { tcp.append(spec) }
        }
        for spec in tcp { arguments += ["-t", spec] }
        for spec in udp { arguments += ["-u", spec] }
        if tcp.isEmpty { arguments += ["-t", "none"] }
        if udp.isEmpty { arguments += ["-u", "none"] }
        arguments += ["-T", "none", "-U", "none"]
        arguments += container.config.networkOptions
        arguments.append(String(pid))
        helper = try spawnTied(pasta, arguments, stderr: log?.rawValue ?? 2, keep: [])
        helperPidfd = berth_pidfd_open(helper)
        // Ready: a line in the fifo. Failed: pasta exited first.
        var fds = [pollfd(fd: ready.rawValue, events: Int16(POLLIN), revents: 0), pollfd(fd: helperPidfd, events: Int16(POLLIN), revents: 0)]
        let deadline = Int64(time(nil)) + 20
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let left = Int32(max(0, deadline - Int64(time(nil))) * 1000)
            let n = poll(&fds, 2, left)
            if n < 0 && Errno.current == .interrupted { continue }
            if n <= 0 { stopHelper(); throw EngineError(.failed, "pasta did not configure the network within 20 seconds") }
            if fds[0].revents & Int16(POLLIN) != 0 {
                let count = buffer.withUnsafeMutableBytes { read(ready.rawValue, $0.baseAddress, $0.count) }
                if count > 0 { return }
            }
            if fds[1].revents != 0 {
                _ = try? waitForProcess(helper)
                helper = 0
                let text = ((try? Files.readString(logPath)) ?? "").split(separator: "\n")
                    .filter { !$0.contains("syslog") }.last.map(String.init) ?? "exited"
                if text.contains("Failed to bind") {
                    throw EngineError(.exists, "pasta: a published port is already in use (\(text))")
                }
                throw EngineError(.failed, "pasta: \(text)")
            }
            // The fifo's writer closed without a line: wait for pasta itself.
            fds[0].events = 0
        }
    }

    /// podman's rootlessport for a rootless bridge container's published
    /// ports: it listens on the host (in the rootless network's user
    /// namespace, so that it may enter its network namespace) and connects
    /// to `childIP` from inside; it exits when our end of a pipe closes.
    func startRootlessport(holder: Int32, childIP: String) throws(EngineError) {
        guard let rootlessport = Tools.rootlessport else {
            throw EngineError(.failed, "published ports on a rootless bridge network need podman's rootlessport (Debian package podman), which is not installed")
        }
        let readyPipe: (read: FileDescriptor, write: FileDescriptor)
        let exitPipe: (read: FileDescriptor, write: FileDescriptor)
        let inputPipe: (read: FileDescriptor, write: FileDescriptor)
        do {
            readyPipe = try makePipe()
            exitPipe = try makePipe()
            inputPipe = try makePipe()
        } catch {
            throw EngineError(.failed, "create a pipe: \(error)")
        }
        defer { readyPipe.read.close(); readyPipe.write.close(); exitPipe.read.close(); inputPipe.read.close() }
        let directory = engine.containers.path(container.id)
        let logPath = directory + "/rootlessport.log"
        let log = try? FileDescriptor.open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o600)
        defer { log?.close() }
        let config = RootlessportConfig(
            mappings: NetavarkInput.ports(container.config.ports) ?? [], netNSPath: "/proc/\(holder)/ns/net",
            exitFD: exitPipe.read.rawValue, readyFD: readyPipe.write.rawValue, tmpDir: ".",
            childIP: childIP, containerID: container.id)
        let input: [UInt8]
        do { input = Array(try JSONEncoder().encode(config)) } catch { throw EngineError(.failed, "encode rootlessport's input: \(error)") }
        do {
            helper = try Subprocess.spawnJoined(
                rootlessport, arguments: [rootlessport], environment: Engine.environment(),
                stdio: [inputPipe.read.rawValue, log?.rawValue ?? 2, log?.rawValue ?? 2],
                joining: .init(pid: holder, flags: BERTH_CLONE_NEWUSER), keep: [readyPipe.write.rawValue, exitPipe.read.rawValue],
                // Its sockets go in a directory made in TmpDir: relative to
                // the rootless network's directory, their paths stay short
                // of sun_path's 108 bytes however long the runroot is.
                directory: engine.rootlessNetns.directory)
        } catch {
            inputPipe.write.close()
            throw EngineError(.failed, "start \(rootlessport): \(error)")
        }
        helperPidfd = berth_pidfd_open(helper)
        helperExitFD = exitPipe.write
        let oldPipe = signal(SIGPIPE, SIG_IGN)
        try? inputPipe.write.writeAll(input)
        inputPipe.write.close()
        signal(SIGPIPE, oldPipe)
        readyPipe.write.close()
        var fds = [pollfd(fd: readyPipe.read.rawValue, events: Int16(POLLIN), revents: 0)]
        var byte: UInt8 = 0
        if poll(&fds, 1, 20_000) > 0, read(readyPipe.read.rawValue, &byte, 1) == 1 { return }
        stopHelper()
        let text = ((try? Files.readString(logPath)) ?? "").split(separator: "\n").last.map(String.init) ?? "exited"
        if text.contains("address already in use") {
            throw EngineError(.exists, "a published port is already in use (rootlessport: \(text))")
        }
        throw EngineError(.failed, "rootlessport: \(text)")
    }

    /// slirp4netns, told to exit when our end of a pipe closes (we die, or teardown).
    private func startSlirp(_ pid: pid_t) throws(EngineError) {
        guard let slirp = Tools.slirp4netns else { throw EngineError(.failed, "slirp4netns is not installed") }
        let readyPipe: (read: FileDescriptor, write: FileDescriptor)
        let exitPipe: (read: FileDescriptor, write: FileDescriptor)
        do {
            readyPipe = try makePipe()
            exitPipe = try makePipe()
        } catch {
            throw EngineError(.failed, "create a pipe: \(error)")
        }
        defer { readyPipe.read.close(); readyPipe.write.close(); exitPipe.read.close() }
        let directory = engine.containers.path(container.id)
        let log = try? FileDescriptor.open(directory + "/slirp4netns.log", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o600)
        defer { log?.close() }
        var arguments = [slirp, "--configure", "--mtu=65520", "--disable-host-loopback",
                         "--ready-fd=\(readyPipe.write.rawValue)", "--exit-fd=\(exitPipe.read.rawValue)"]
        arguments += container.config.networkOptions.map { "--" + $0 }
        arguments += [String(pid), "tap0"]
        helper = try spawnTied(slirp, arguments, stderr: log?.rawValue ?? 2, keep: [readyPipe.write.rawValue, exitPipe.read.rawValue])
        helperPidfd = berth_pidfd_open(helper)
        helperExitFD = exitPipe.write
        readyPipe.write.close()
        var fds = [pollfd(fd: readyPipe.read.rawValue, events: Int16(POLLIN), revents: 0)]
        var byte: UInt8 = 0
        if poll(&fds, 1, 20_000) > 0, read(readyPipe.read.rawValue, &byte, 1) == 1 { return }
        stopHelper()
        let text = ((try? Files.readString(directory + "/slirp4netns.log")) ?? "").split(separator: "\n").last.map(String.init) ?? "exited"
        throw EngineError(.failed, "slirp4netns: \(text)")
    }

    private func stopHelper() {
        var entry = pollfd(fd: helperPidfd, events: Int16(POLLIN), revents: 0)
        if let exit = helperExitFD {
            // Told through its exit descriptor, it cleans up after itself.
            exit.close()
            helperExitFD = nil
            if helperPidfd >= 0 { _ = poll(&entry, 1, 1000) }
        }
        if helper > 0 {
            if helperPidfd >= 0, entry.revents == 0 { _ = berth_pidfd_send_signal(helperPidfd, SIGTERM) }
            if helperPidfd >= 0, poll(&entry, 1, 2000) == 0 { _ = berth_pidfd_send_signal(helperPidfd, SIGKILL) }
            _ = try? waitForProcess(helper)
            helper = 0
        }
        if helperPidfd >= 0 { close(helperPidfd); helperPidfd = -1 }
    }

    /// Undoes all of it (once): helper, netavark, leases, netns, reserved ports.
    package func tearDown() {
        guard !done else { return }
        done = true
        stopHelper()
        engine.tearDownNetwork(container.id)
        for fd in reserved { close(fd) }
        reserved = []
    }
}

extension Engine {
    package var networks: NetworkStore { NetworkStore(images: images) }
    var netnsDirectory: String { runtime.stateRoot + "/@netns" }
    var netavarkConfig: String { runtime.stateRoot + "/@networks" }

    /// Before the launch: files, namespace paths, and for bridge networks
    /// the netns, addresses, held ports and netavark's setup.
    package func prepareNetwork(_ container: Container) throws(EngineError) -> NetworkSession {
        let session = NetworkSession(engine: self, container: container)
        // What an earlier run left (its launcher died): undo first.
        if container.state.network != nil { tearDownNetwork(container.id) }
        let config = container.config
        let mode = config.network
        var namespace: LinuxNamespace? = LinuxNamespace(type: "network")
        var joinUser: String? = nil
        var addresses: [String] = []
        var hostAddress: String? = nil
        var servers: [String] = []
        var search: [String] = []
        do throws(EngineError) {
            switch mode {
            case "host":
                namespace = nil
            case "none":
                break
            case "pasta", "slirp4netns":
                if mode == "pasta" {
                    // pasta binds the ports itself: find a taken one here, with a clear message.
                    for fd in try PortReservation.reserve(config.ports) { close(fd) }
                }
                let route: (address: String?, gateway: String?) = mode == "pasta" ? EtcFiles.hostDefaultRoute() : (nil, nil)
                if mode == "pasta" { addresses = route.address.map { [$0] } ?? [] }
                // pasta sends the gateway's address to the host; slirp4netns has 10.0.2.2.
                hostAddress = mode == "pasta" ? route.gateway : "10.0.2.2"
                if mode == "slirp4netns" { addresses = ["10.0.2.100"] }
            case "bridge":
                let state = try setUpBridge(container, session: session)
                namespace = LinuxNamespace(type: "network", path: state.netns)
                joinUser = state.joinUser
                addresses = state.interfaces.flatMap { $0.addresses.map { String($0.split(separator: "/")[0]) } }
                hostAddress = state.interfaces.first?.gateways.first
                servers = state.dnsServers
                search = state.dnsSearch
            default:
                if mode.hasPrefix("container:") {
                    let other = try lookup(String(mode.dropFirst("container:".count)))
                    guard other.processAlive else {
                        throw EngineError(.invalidState, "container \(other.name), whose network this container joins, is not running")
                    }
                    namespace = LinuxNamespace(type: "network", path: other.state.network?.joinPath ?? "/proc/\(other.state.pid)/ns/net")
                    if rootless { joinUser = "/proc/\(other.state.pid)/ns/user" }
                    // Its files too: the same names, the same resolvers.
                    let from = containers.path(other.id)
                    for name in ["hosts", "resolv.conf"] {
                        if let bytes = try? Files.read(from + "/" + name) {
                            try? Files.writeAtomically(containers.path(container.id) + "/" + name, bytes, mode: 0o644)
                        }
                    }
                } else if mode.hasPrefix("ns:") {
                    namespace = LinuxNamespace(type: "network", path: String(mode.dropFirst(3)))
                }
            }
            let directory = containers.path(container.id)
            if !mode.hasPrefix("container:") {
                let hostsText = EtcFiles.hosts(config: config, name: container.name, addresses: addresses, hostAddress: hostAddress,
                                               hostFile: mode == "host" ? (try? Files.readString("/etc/hosts")) : nil)
                let resolv = EtcFiles.resolvConf(config: config, hostText: EtcFiles.hostResolvConf(), networkServers: servers,
                                                 searchDomains: search, keepLoopback: mode == "host")
                try writeFile(directory + "/hosts", hostsText)
                try writeFile(directory + "/resolv.conf", resolv)
            }
            try writeFile(directory + "/hostname", config.hostname + "\n")
            // Only a joined namespace changes config.json: the modes without a
            // path are as create wrote them, and need no decode on each start.
            if namespace?.path != nil || joinUser != nil {
                try setNamespaces(container.id, network: namespace, user: joinUser)
            }
        } catch {
            session.tearDown()
            throw error
        }
        return session
    }

    private func writeFile(_ path: String, _ text: String) throws(EngineError) {
        do { try Files.writeAtomically(path, Array(text.utf8), mode: 0o644) } catch {
            throw EngineError(.failed, "write \(path): \(error)")
        }
    }

    /// config.json's network (and, to join another rootless container's, user) namespace.
    private func setNamespaces(_ id: String, network: LinuxNamespace?, user: String?) throws(EngineError) {
        let path = containers.path(id) + "/config.json"
        guard let bytes = try? Files.read(path), var spec = try? JSONDecoder().decode(Spec.self, from: Data(bytes)) else {
            throw EngineError(.failed, "read \(path)")
        }
        var namespaces = spec.linux?.namespaces ?? []
        let before = namespaces
        namespaces.removeAll { $0.type == "network" }
        if let network { namespaces.append(network) }
        if let user {
            namespaces.removeAll { $0.type == "user" }
            namespaces.append(LinuxNamespace(type: "user", path: user))
            spec.linux?.uidMappings = nil
            spec.linux?.gidMappings = nil
        }
        guard namespaces != before else { return }
        spec.linux?.namespaces = namespaces
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try Files.writeAtomically(path, Array(try encoder.encode(spec)), mode: 0o600)
        } catch {
            throw EngineError(.failed, "write \(path): \(error)")
        }
    }

    struct BridgeResult {
        /// The path the container joins.
        var netns: String
        /// Rootless: the rootless network's user namespace.
        var joinUser: String?
        var interfaces: [NetworkState.Interface]
        var dnsServers: [String]
        var dnsSearch: [String]
    }

    /// netns file, leases, held ports, then `netavark setup`; recorded in the container's state.
    private func setUpBridge(_ container: Container, session: NetworkSession) throws(EngineError) -> BridgeResult {
        guard let netavark = Tools.netavark else {
            throw EngineError(.failed, "netavark is not installed (Debian package netavark): bridge networks need it")
        }
        var infos: [String: NetworkConfig] = [:]
        for request in container.config.networks { infos[request.name] = try networks.load(request.name) }
        // Ports first: a taken one is the likeliest failure, and needs nothing undone.
        session.reserved = try PortReservation.reserve(container.config.ports)
        // Rootless, rootlessport binds them: the check was all.
        if rootless { for fd in session.reserved { close(fd) }; session.reserved = [] }
        var state = NetworkState()
        state.ownerPid = getpid()
        state.ownerStartTime = processStartTime(getpid()) ?? 0
        var holder: RootlessNetns.Holder? = nil
        if rootless {
            // The namespace file is made under the rootless network's lock,
            // so a last container's teardown elsewhere keeps the holder.
            let rootlessNetns = self.rootlessNetns
            let netns = rootlessNetns.namespacePath(container.id)
            holder = try rootlessNetns.locked { () throws(EngineError) -> RootlessNetns.Holder in
                let holder = try rootlessNetns.ensure()
                state.netns = netns
                state.holderPid = holder.pid
                state.holderStartTime = holder.startTime
                try containers.update(container.id) { (record) throws(EngineError) in record.state.network = state }
                try Self.makeNamespaceFile(netns)
                return holder
            }
            if berth_joined_netns_create(holder!.pid, netns, 0) != 0 {
                throw EngineError(.failed, "create a network namespace at \(netns) in the rootless network: \(Errno.current)")
            }
        } else {
            let netns = netnsDirectory + "/" + container.id
            state.netns = netns
            // Recorded first, so that whatever fails below is undone by teardown.
            try containers.update(container.id) { (record) throws(EngineError) in record.state.network = state }
            do { try Files.makeDirectories(netavarkConfig, mode: 0o700) } catch {
                throw EngineError(.failed, "create \(netavarkConfig): \(error)")
            }
            try Self.makeNamespaceFile(netns)
            if berth_netns_create(netns) != 0 { throw EngineError(.failed, "create a network namespace at \(netns): \(Errno.current)") }
        }
        let netns = state.netns!
        var perNetwork: [String: NetavarkInput.PerNetwork] = [:]
        for (index, request) in container.config.networks.enumerated() {
            guard let info = infos[request.name] else { continue }
            let ips = try networks.allocate(info, container: container.id, requested: request.ips.compactMap(IPAddress.init))
            var aliases = request.aliases
            if info.dnsEnabled { aliases = [container.name, container.shortID] + aliases.filter { $0 != container.name } }
            perNetwork[request.name] = .init(staticIPs: ips.map(\.description), aliases: aliases, interfaceName: "eth\(index)",
                                             staticMAC: request.mac)
            state.interfaces.append(.init(network: request.name, name: "eth\(index)", addresses: ips.map(\.description)))
        }
        // From here on teardown runs netavark (a failed setup may have done half).
        state.netavarkConfig = holder == nil ? netavarkConfig : rootlessNetns.netavarkConfig
        try containers.update(container.id) { (record) throws(EngineError) in record.state.network = state }
        // Rootless, rootlessport forwards the ports instead of netavark's rules.
        let input = NetavarkInput(
            containerID: container.id, containerName: container.name,
            portMappings: holder == nil ? NetavarkInput.ports(container.config.ports) : nil,
            networks: perNetwork, networkInfo: infos, dnsServers: container.config.dns.isEmpty ? nil : container.config.dns)
        let statuses: [String: NetavarkStatus] = try runNetavark(netavark, "setup", netns: netns, input: input, holder: holder?.pid)
        var result = BridgeResult(netns: state.joinPath ?? netns, joinUser: holder.map { "/proc/\($0.pid)/ns/user" },
                                  interfaces: [], dnsServers: [], dnsSearch: [])
        for (index, request) in container.config.networks.enumerated() {
            let name = "eth\(index)"
            let interface = NetworkState.Interface(network: request.name, name: name, reported: statuses[request.name]?.interfaces?[name])
            if let status = statuses[request.name] {
                result.dnsServers += (status.dnsServerIPs ?? []).filter { !result.dnsServers.contains($0) }
                result.dnsSearch += (status.dnsSearchDomains ?? []).filter { !result.dnsSearch.contains($0) }
            }
            result.interfaces.append(interface)
        }
        state.interfaces = result.interfaces
        try containers.update(container.id) { (record) throws(EngineError) in record.state.network = state }
        if let holder, !container.config.ports.isEmpty {
            let address = result.interfaces.lazy.flatMap(\.addresses).map { String($0.split(separator: "/")[0]) }.first { !$0.contains(":") }
            guard let address else { throw EngineError(.failed, "published ports need an IPv4 address on the container's first network") }
            try session.startRootlessport(holder: holder.pid, childIP: address)
            state.helperPid = session.helper
            state.helperStartTime = processStartTime(session.helper) ?? 0
            try containers.update(container.id) { (record) throws(EngineError) in record.state.network = state }
        }
        return result
    }

    static func makeNamespaceFile(_ path: String) throws(EngineError) {
        do {
            try Files.makeDirectories(String(path[..<path.lastIndex(of: "/")!]), mode: 0o755)
            let fd = try FileDescriptor.open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode: 0o444)
            fd.close()
        } catch {
            throw EngineError(.failed, "create \(path): \(error)")
        }
    }

    /// netavark, serialised by a host-wide lock of our own (bridge creation
    /// and firewall changes of two berths must not interleave, even with
    /// different stores).
    func runNetavark<Output: Decodable>(_ netavark: String, _ command: String, netns: String,
                                        input: NetavarkInput, holder: Int32? = nil) throws(EngineError) -> Output {
        let bytes: [UInt8]
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            bytes = Array(try encoder.encode(input))
        } catch {
            throw EngineError(.failed, "encode netavark's input: \(error)")
        }
        let config = holder == nil ? netavarkConfig : rootlessNetns.netavarkConfig
        var arguments = [netavark, "--config", config, "--rootless", holder == nil ? "false" : "true"]
        if let aardvark = Tools.aardvark { arguments += ["--aardvark-binary", aardvark] }
        arguments += [command, netns]
        // Bridges and firewall chains are the host's, whatever --root or
        // --runroot a berth runs with: one lock for the host. Rootless,
        // they are the rootless network namespace's.
        let lockPath = holder != nil ? rootlessNetns.directory + "/netavark.lock"
            : Files.exists("/run/lock") ? "/run/lock/berth-netavark.lock" : netavarkConfig + "/netavark.lock"
        let lock = try? FileDescriptor.open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, mode: 0o600)
        defer { lock?.close() }
        if let lock { while flock(lock.rawValue, LOCK_EX) != 0 && Errno.current == .interrupted {} }
        let result: (status: ExitStatus, output: [UInt8], error: [UInt8])
        do {
            var environment = Engine.environment()
            if !environment.contains(where: { $0.hasPrefix("PATH=") }) { environment.append("PATH=/usr/sbin:/usr/bin:/sbin:/bin") }
            // Rootless: inside the holder's user, mount and network namespaces.
            let joining = holder.map { Subprocess.Namespaces(pid: $0, flags: BERTH_CLONE_NEWUSER | BERTH_CLONE_NEWNS | BERTH_CLONE_NEWNET) }
            result = try Subprocess.capture(netavark, arguments: arguments, environment: environment, input: bytes, timeout: 60,
                                            joining: joining)
        } catch {
            throw EngineError(.failed, "run \(netavark): \(error)")
        }
        let data = Data(result.output)
        guard result.status == .exited(0) else {
            let message = (try? JSONDecoder().decode(NetavarkFailure.self, from: data))?.error
                ?? String(decoding: result.error, as: UTF8.self).split(separator: "\n").filter { !$0.contains("syslog") }.last.map(String.init)
                ?? "exit \(result.status)"
            throw EngineError(.failed, "netavark \(command): \(message)")
        }
        if Output.self == Empty.self, let empty = Empty() as? Output { return empty }
        do {
            return try JSONDecoder().decode(Output.self, from: data)
        } catch {
            throw EngineError(.failed, "netavark \(command) answered what berth cannot read: \(String(decoding: result.output.prefix(200), as: UTF8.self))")
        }
    }

    struct Empty: Decodable {}
    struct NetavarkFailure: Decodable { var error: String }

    /// Undoes what the record says was set up; safe to call again, and
    /// from any berth once the container's launcher is gone.
    package func tearDownNetwork(_ id: String) {
        guard let record = containers.load(id) else { networks.release(container: id); return }
        if let state = record.state.network {
            if state.helperPid > 0, processStartTime(state.helperPid) == state.helperStartTime {
                _ = Glibc.kill(state.helperPid, SIGKILL)
            }
            if let netns = state.netns {
                // Rootless: the holder whose mount namespace has the netns (gone with it if it died).
                let holder = state.holderPid.flatMap { processStartTime($0) == state.holderStartTime ? $0 : nil }
                let reachable = state.holderPid == nil ? Files.exists(netns) : holder != nil
                if state.netavarkConfig != nil, reachable, let netavark = Tools.netavark {
                    var infos: [String: NetworkConfig] = [:]
                    var perNetwork: [String: NetavarkInput.PerNetwork] = [:]
                    let leases = networks.leases(of: id)
                    for (index, request) in record.config.networks.enumerated() {
                        guard let info = try? networks.load(request.name) else { continue }
                        infos[request.name] = info
                        let ips = state.interfaces.first { $0.network == request.name }?.addresses.map { String($0.split(separator: "/")[0]) }
                        let interface = state.interfaces.first { $0.network == request.name }?.name ?? "eth\(index)"
                        perNetwork[request.name] = .init(staticIPs: ips ?? leases[request.name] ?? [], aliases: [],
                                                         interfaceName: interface, staticMAC: nil)
                    }
                    let input = NetavarkInput(
                        containerID: id, containerName: record.name,
                        portMappings: state.holderPid == nil ? NetavarkInput.ports(record.config.ports) : nil,
                        networks: perNetwork, networkInfo: infos, dnsServers: nil)
                    if !perNetwork.isEmpty {
                        do {
                            let _: Empty = try runNetavark(netavark, "teardown", netns: netns, input: input, holder: holder)
                        } catch {
                            warn("container \(record.shortID): \(error.message)")
                        }
                    }
                }
                if state.holderPid != nil {
                    // The last container out stops the rootless network.
                    let rootlessNetns = self.rootlessNetns
                    try? rootlessNetns.locked { () throws(EngineError) in
                        if let holder { _ = berth_joined_netns_create(holder, netns, 1) }
                        _ = unlink(netns)
                        rootlessNetns.stopIfUnused()
                    }
                } else {
                    _ = umount2(netns, Int32(MNT_DETACH))
                    _ = unlink(netns)
                }
            }
        }
        networks.release(container: id)
        _ = try? containers.update(id) { (record) throws(EngineError) in record.state.network = nil }
    }

    func warn(_ message: String) {
        try? FileDescriptor.standardError.writeAll("berth: warning: \(message)\n")
    }
}

// MARK: - connect, disconnect

extension Engine {
    /// Containers (ids) whose config names `network`.
    package func usersOf(network name: String) -> [Container] {
        containers.list().filter { $0.config.network == "bridge" && $0.config.networks.contains { $0.name == name } }
    }

    /// Adds a network to a container; a running one gets its interface now.
    package func connect(_ container: Container, to name: String, ip: String?, aliases: [String]) throws(EngineError) {
        let network = try networks.load(name)
        guard container.config.network == "bridge" else {
            throw EngineError(.invalidArgument, "container \(container.name) has --network \(container.config.network): only bridge containers join networks")
        }
        guard !container.config.networks.contains(where: { $0.name == network.name }) else {
            throw EngineError(.exists, "container \(container.name) is already connected to network \(network.name)")
        }
        var request = NetworkRequest(name: network.name)
        request.aliases = aliases
        if let ip {
            guard let address = IPAddress(ip), network.parsedSubnets.contains(where: { $0.subnet.contains(address) }) else {
                throw EngineError(.invalidArgument, "--ip \(ip) is not in a subnet of network \(network.name)")
            }
            request.ips = [address.description]
        }
        let current = refresh(container)
        if current.state.status == "running", let netns = current.state.network?.netns, let netavark = Tools.netavark {
            let holder = current.state.network?.holderPid
            let taken = Set(current.state.network?.interfaces.map(\.name) ?? [])
            let interfaceName = (0...).lazy.map { "eth\($0)" }.first { !taken.contains($0) }!
            let ips = try networks.allocate(network, container: container.id, requested: request.ips.compactMap(IPAddress.init))
            var allAliases = aliases
            if network.dnsEnabled { allAliases = [container.name, container.shortID] + aliases }
            let input = NetavarkInput(containerID: container.id, containerName: container.name, portMappings: nil,
                                      networks: [network.name: .init(staticIPs: ips.map(\.description), aliases: allAliases,
                                                                     interfaceName: interfaceName, staticMAC: nil)],
                                      networkInfo: [network.name: network], dnsServers: nil)
            let statuses: [String: NetavarkStatus]
            do {
                statuses = try runNetavark(netavark, "setup", netns: netns, input: input, holder: holder)
            } catch {
                networks.release(container: container.id, network: network.name)
                throw error
            }
            let interface = NetworkState.Interface(network: network.name, name: interfaceName,
                                                   reported: statuses[network.name]?.interfaces?[interfaceName])
            try containers.update(container.id) { (record) throws(EngineError) in
                record.config.networks.append(request)
                record.state.network?.interfaces.append(interface)
            }
            return
        }
        try containers.update(container.id) { (record) throws(EngineError) in record.config.networks.append(request) }
    }

    package func disconnect(_ container: Container, from name: String) throws(EngineError) {
        let network = try networks.load(name)
        guard container.config.networks.contains(where: { $0.name == network.name }) else {
            throw EngineError(.notFound, "container \(container.name) is not connected to network \(network.name)")
        }
        let current = refresh(container)
        if current.state.status == "running", let netns = current.state.network?.netns, let netavark = Tools.netavark,
           let interface = current.state.network?.interfaces.first(where: { $0.network == network.name }) {
            let input = NetavarkInput(containerID: container.id, containerName: container.name, portMappings: nil,
                                      networks: [network.name: .init(staticIPs: interface.addresses.map { String($0.split(separator: "/")[0]) },
                                                                     aliases: [], interfaceName: interface.name, staticMAC: nil)],
                                      networkInfo: [network.name: network], dnsServers: nil)
            let _: Empty = try runNetavark(netavark, "teardown", netns: netns, input: input, holder: current.state.network?.holderPid)
        }
        networks.release(container: container.id, network: network.name)
        try containers.update(container.id) { (record) throws(EngineError) in
            record.config.networks.removeAll { $0.name == network.name }
            record.state.network?.interfaces.removeAll { $0.network == network.name }
        }
    }
}
