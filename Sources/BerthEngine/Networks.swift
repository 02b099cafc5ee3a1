#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthImage
import BerthOS

/// An IPv4 or IPv6 address as one 128-bit number (IPv4 in the low 32 bits).
package struct IPAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    package var value: UInt128
    package var isV6: Bool

    package init(value: UInt128, isV6: Bool) {
        self.value = value
        self.isV6 = isV6
    }

    package init?(_ text: String) {
        if text.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, text, &raw) == 1 else { return nil }
            var value: UInt128 = 0
            withUnsafeBytes(of: raw) { for byte in $0 { value = value << 8 | UInt128(byte) } }
            self.init(value: value, isV6: true)
        } else {
            var raw = in_addr()
            guard inet_pton(AF_INET, text, &raw) == 1 else { return nil }
            self.init(value: UInt128(UInt32(bigEndian: raw.s_addr)), isV6: false)
        }
    }

    package var bits: Int { isV6 ? 128 : 32 }

    package var description: String {
        if isV6 {
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { bytes in
                for index in 0..<16 { bytes[index] = UInt8(truncatingIfNeeded: value >> (8 * (15 - index))) }
            }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let v = UInt32(truncatingIfNeeded: value)
        return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
    }

    package var isLoopback: Bool { isV6 ? value == 1 : (value >> 24) == 127 }

    package static func < (a: IPAddress, b: IPAddress) -> Bool { (a.isV6 ? 1 : 0, a.value) < (b.isV6 ? 1 : 0, b.value) }
}

/// A CIDR subnet, its address masked to the prefix.
package struct Subnet: Hashable, Sendable, CustomStringConvertible {
    package var address: IPAddress
    package var prefix: Int

    package init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(String(parts[0])), let prefix = Int(parts[1]),
              prefix >= 0, prefix <= address.bits else { return nil }
        self.init(address: address, prefix: prefix)
    }

    package init(address: IPAddress, prefix: Int) {
        self.prefix = prefix
        self.address = IPAddress(value: address.value & Subnet.mask(prefix, bits: address.bits), isV6: address.isV6)
    }

    static func mask(_ prefix: Int, bits: Int) -> UInt128 {
        let all: UInt128 = bits == 128 ? .max : (UInt128(1) << bits) - 1
        return prefix == 0 ? 0 : all & ~((UInt128(1) << (bits - prefix)) - 1)
    }

    package var description: String { "\(address)/\(prefix)" }
    package var isV6: Bool { address.isV6 }
    /// The number of addresses (capped: a /64 has more than any lease file).
    var size: UInt128 { address.bits - prefix >= 127 ? .max : UInt128(1) << (address.bits - prefix) }
    package var last: IPAddress { IPAddress(value: address.value + (size - 1), isV6: isV6) }

    package func contains(_ ip: IPAddress) -> Bool {
        ip.isV6 == isV6 && ip.value & Subnet.mask(prefix, bits: address.bits) == address.value
    }

    package func overlaps(_ other: Subnet) -> Bool {
        other.isV6 == isV6 && (contains(other.address) || other.contains(address))
    }

    /// The n-th address of the subnet (1: the usual gateway).
    package func host(_ n: UInt128) -> IPAddress { IPAddress(value: address.value + n, isV6: isV6) }
}

/// One network, stored in netavark's own JSON format (what `netavark
/// setup` reads as network_info, and what `network inspect` prints).
package struct NetworkConfig: Codable, Sendable, Equatable {
    package var name: String
    package var id: String
    package var driver: String
    package var networkInterface: String?
    package var created: String?
    package var subnets: [NetworkSubnet]?
    package var ipv6Enabled: Bool
    package var `internal`: Bool
    package var dnsEnabled: Bool
    package var labels: [String: String]?
    package var options: [String: String]?
    package var ipamOptions: [String: String]?

    package struct NetworkSubnet: Codable, Sendable, Equatable {
        package var subnet: String
        package var gateway: String?
        package init(subnet: String, gateway: String?) {
            self.subnet = subnet
            self.gateway = gateway
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, id, driver, created, subnets, labels, options, `internal`
        case networkInterface = "network_interface"
        case ipv6Enabled = "ipv6_enabled"
        case dnsEnabled = "dns_enabled"
        case ipamOptions = "ipam_options"
    }

    package var parsedSubnets: [(subnet: Subnet, gateway: IPAddress?)] {
        (subnets ?? []).compactMap { entry in Subnet(entry.subnet).map { ($0, entry.gateway.flatMap(IPAddress.init)) } }
    }
}

/// What `network create` was asked for.
package struct NetworkCreateOptions: Sendable {
    package var name: String
    package var driver = "bridge"
    package var subnets: [String] = []
    package var gateways: [String] = []
    package var `internal` = false
    package var ipv6 = false
    package var disableDNS = false
    package var labels: [String: String] = [:]
    package var options: [String: String] = [:]
    package var interfaceName: String?

    package init(name: String) { self.name = name }
}

/// The networks of a store (`networks/<name>.json`) and their address
/// leases (`networks/leases.json`), changed under the store's lock. The
/// default network `berth` is not stored: it is always there.
package struct NetworkStore: Sendable {
    package let images: ImageStore
    package static let defaultName = "berth"
    package static let defaultSubnet = "10.88.0.0/16"
    /// sha256("berth"): fixed, so every store names the default network alike.
    package static let defaultID = "5c2f64c7f21efd5fb5e3d6a499abe5eacb248ae6f6f0085387c9a056d10ef5fd"

    package init(images: ImageStore) { self.images = images }

    package var directory: String { images.root + "/networks" }
    func path(_ name: String) -> String { directory + "/" + name + ".json" }
    var leasesPath: String { directory + "/leases.json" }

    package static var defaultNetwork: NetworkConfig {
        NetworkConfig(name: defaultName, id: defaultID, driver: "bridge", networkInterface: "berth0",
                      created: nil, subnets: [.init(subnet: defaultSubnet, gateway: "10.88.0.1")], ipv6Enabled: false,
                      internal: false, dnsEnabled: false, labels: [:], options: [:], ipamOptions: ["driver": "host-local"])
    }

    package static func validate(name: String) throws(EngineError) {
        let ok = !name.isEmpty && name.utf8.count <= 128 && name.utf8.first.map { isAlnum($0) } == true
            && name.utf8.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
        guard ok else {
            throw EngineError(.invalidArgument, "invalid network name \"\(name)\": use letters, digits, '_', '.' and '-', starting with a letter or digit")
        }
    }

    private static func isAlnum(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
    }

    package func load(_ name: String) throws(EngineError) -> NetworkConfig {
        if name == Self.defaultName { return Self.defaultNetwork }
        if let network = stored(name) { return network }
        // A unique id prefix works too, as podman allows.
        let matches = list().filter { $0.id.hasPrefix(name) }
        if name.utf8.count >= 3, matches.count == 1 { return matches[0] }
        throw EngineError(.notFound, "network \"\(name)\" not found")
    }

    func stored(_ name: String) -> NetworkConfig? {
        guard !name.contains("/"), let bytes = try? Files.read(path(name)) else { return nil }
        return try? JSONDecoder().decode(NetworkConfig.self, from: Data(bytes))
    }

    /// The default network first, then the others by name.
    package func list() -> [NetworkConfig] {
        let names = Files.list(directory).filter { $0.hasSuffix(".json") && $0 != "leases.json" }.map { String($0.dropLast(5)) }.sorted()
        return [Self.defaultNetwork] + names.compactMap(stored)
    }

    package func locked<R>(_ body: () throws(EngineError) -> R) throws(EngineError) -> R {
        try ContainerStore(images: images).locked(body)
    }

    // MARK: create, remove

    package func create(_ request: NetworkCreateOptions) throws(EngineError) -> NetworkConfig {
        try Self.validate(name: request.name)
        guard ["bridge", "macvlan"].contains(request.driver) else {
            throw EngineError(.invalidArgument, "unsupported network driver \"\(request.driver)\": berth has bridge and macvlan")
        }
        if request.driver == "macvlan", request.options["parent"] == nil {
            throw EngineError(.invalidArgument, "a macvlan network needs its host interface: -o parent=IFACE")
        }
        if let parent = request.options["parent"], !Files.exists("/sys/class/net/" + parent) || parent.contains("/") {
            throw EngineError(.invalidArgument, "-o parent=\(parent): no such network interface on this host")
        }
        var given: [Subnet] = []
        for text in request.subnets {
            guard let subnet = Subnet(text) else { throw EngineError(.invalidArgument, "--subnet \"\(text)\": expected CIDR such as 10.89.0.0/24") }
            guard subnet.address.bits - subnet.prefix >= 2 else {
                throw EngineError(.invalidArgument, "--subnet \(text): too small for a gateway and a container")
            }
            given.append(subnet)
        }
        if request.gateways.count > given.count {
            throw EngineError(.invalidArgument, "--gateway needs a --subnet for each gateway")
        }
        return try locked { () throws(EngineError) -> NetworkConfig in
            if request.name == Self.defaultName || stored(request.name) != nil {
                throw EngineError(.exists, "network \"\(request.name)\" already exists")
            }
            let existing = list()
            let hostRoutes = Self.hostRoutes()
            for subnet in given {
                if let other = existing.first(where: { $0.parsedSubnets.contains { $0.subnet.overlaps(subnet) } }),
                   let theirs = other.parsedSubnets.first(where: { $0.subnet.overlaps(subnet) }) {
                    throw EngineError(.exists, "subnet \(subnet) overlaps with network \"\(other.name)\" (\(theirs.subnet))")
                }
                if request.driver == "bridge", let route = hostRoutes.first(where: { $0.overlaps(subnet) }) {
                    throw EngineError(.exists, "subnet \(subnet) overlaps with the host's route to \(route)")
                }
            }
            var subnets = given
            let used = existing.flatMap { $0.parsedSubnets.map(\.subnet) } + hostRoutes
            if !subnets.contains(where: { !$0.isV6 }) && !(request.ipv6 && !subnets.isEmpty) {
                subnets.append(try Self.freeSubnet(avoiding: used))
            }
            if request.ipv6 && !subnets.contains(where: { $0.isV6 }) {
                subnets.append(Self.randomUniqueLocalSubnet())
            }
            var entries: [NetworkConfig.NetworkSubnet] = []
            for (index, subnet) in subnets.enumerated() {
                var gateway = subnet.host(1)
                if index < request.gateways.count {
                    guard let ip = IPAddress(request.gateways[index]), subnet.contains(ip) else {
                        throw EngineError(.invalidArgument, "--gateway \(request.gateways[index]) is not an address in \(subnet)")
                    }
                    gateway = ip
                }
                entries.append(.init(subnet: subnet.description, gateway: request.driver == "macvlan" && index >= request.gateways.count ? nil : gateway.description))
            }
            var interface = request.interfaceName
            if interface == nil {
                if request.driver == "macvlan" {
                    interface = request.options["parent"]
                } else {
                    let taken = Set(existing.compactMap(\.networkInterface)).union(Files.list("/sys/class/net"))
                    interface = (1...).lazy.map { "berth\($0)" }.first { !taken.contains($0) }
                }
            }
            var options = request.options
            options.removeValue(forKey: "parent")
            let network = NetworkConfig(
                name: request.name, id: Self.randomID(), driver: request.driver,
                networkInterface: interface, created: Timestamps.now(), subnets: entries,
                ipv6Enabled: subnets.contains { $0.isV6 }, internal: request.internal,
                dnsEnabled: request.driver == "bridge" && !request.disableDNS, labels: request.labels, options: options,
                ipamOptions: ["driver": "host-local"])
            do {
                try Files.makeDirectories(directory, mode: 0o700)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                try Files.writeAtomically(path(request.name), Array(try encoder.encode(network)), mode: 0o644)
            } catch {
                throw EngineError(.failed, "write network \(request.name): \(error)")
            }
            return network
        }
    }

    package func remove(_ name: String) throws(EngineError) {
        guard name != Self.defaultName else {
            throw EngineError(.invalidArgument, "the default network \(name) cannot be removed")
        }
        try locked { () throws(EngineError) in
            guard stored(name) != nil else { throw EngineError(.notFound, "network \"\(name)\" not found") }
            _ = unlink(path(name))
            var leases = readLeases()
            if leases.removeValue(forKey: name) != nil { try writeLeases(leases) }
        }
    }

    static func randomID() -> String {
        (0..<4).map { _ in
            let hex = String(UInt64.random(in: 0...UInt64.max), radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// The first 10.89.N.0/24 that overlaps nothing in use (podman's choice).
    static func freeSubnet(avoiding used: [Subnet]) throws(EngineError) -> Subnet {
        for second in 89..<256 {
            for third in 0..<256 {
                guard let candidate = Subnet("10.\(second).\(third).0/24") else { continue }
                if !used.contains(where: { $0.overlaps(candidate) }) { return candidate }
            }
        }
        throw EngineError(.failed, "no free subnet left in 10.89.0.0-10.255.255.0: give one with --subnet")
    }

    static func randomUniqueLocalSubnet() -> Subnet {
        let global = UInt128(UInt64.random(in: 0...0xff_ffff_ffff))
        let value = (UInt128(0xfd) << 120) | (global << 80)
        return Subnet(address: IPAddress(value: value, isV6: true), prefix: 64)
    }

    /// The host's IPv4 routes other than the default one (/proc/net/route).
    package static func hostRoutes() -> [Subnet] {
        guard let text = try? Files.readString("/proc/net/route") else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line -> Subnet? in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 8, let destination = UInt32(fields[1], radix: 16), let mask = UInt32(fields[7], radix: 16),
                  mask != 0 else { return nil }
            let prefix = UInt32(bigEndian: mask).nonzeroBitCount
            return Subnet(address: IPAddress(value: UInt128(UInt32(bigEndian: destination)), isV6: false), prefix: prefix)
        }
    }

    // MARK: leases

    typealias Leases = [String: [String: String]]

    func readLeases() -> Leases {
        guard let bytes = try? Files.read(leasesPath) else { return [:] }
        return (try? JSONDecoder().decode(Leases.self, from: Data(bytes))) ?? [:]
    }

    func writeLeases(_ leases: Leases) throws(EngineError) {
        do {
            try Files.makeDirectories(directory, mode: 0o700)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try Files.writeAtomically(leasesPath, Array(try encoder.encode(leases)), mode: 0o600)
        } catch {
            throw EngineError(.failed, "write the address leases \(leasesPath): \(error)")
        }
    }

    /// Leases an address in each subnet of `network` to `container`: the
    /// requested ones, or the lowest free ones after the gateway.
    package func allocate(_ network: NetworkConfig, container: String, requested: [IPAddress]) throws(EngineError) -> [IPAddress] {
        try locked { () throws(EngineError) -> [IPAddress] in
            var leases = readLeases()
            var mine = leases[network.name] ?? [:]
            // Whatever this container held before (an earlier start) is its own again.
            mine = mine.filter { $0.value != container }
            var result: [IPAddress] = []
            for (subnet, gateway) in network.parsedSubnets {
                if let ip = requested.first(where: { subnet.contains($0) }) {
                    if ip == gateway || ip == subnet.address || (!subnet.isV6 && ip == subnet.last) {
                        throw EngineError(.invalidArgument, "--ip \(ip) is the network's own address in \(subnet)")
                    }
                    if let holder = mine[ip.description] {
                        throw EngineError(.exists, "address \(ip) on network \(network.name) is in use by container \(holder.prefix(12))")
                    }
                    mine[ip.description] = container
                    result.append(ip)
                    continue
                }
                var n: UInt128 = 1
                var found: IPAddress? = nil
                while n < min(subnet.size - (subnet.isV6 ? 0 : 1), 1 << 24) {
                    let candidate = subnet.host(n)
                    n += 1
                    if candidate == gateway || mine[candidate.description] != nil { continue }
                    found = candidate
                    break
                }
                guard let found else {
                    throw EngineError(.failed, "network \(network.name) has no free address left in \(subnet)")
                }
                mine[found.description] = container
                result.append(found)
            }
            for ip in requested where !network.parsedSubnets.contains(where: { $0.subnet.contains(ip) }) {
                throw EngineError(.invalidArgument, "--ip \(ip) is not in a subnet of network \(network.name)")
            }
            leases[network.name] = mine
            try writeLeases(leases)
            return result
        }
    }

    /// Gives back every address `container` holds (on `network` only, when given).
    package func release(container: String, network only: String? = nil) {
        _ = try? locked { () throws(EngineError) in
            var leases = readLeases()
            var changed = false
            for (name, entries) in leases where only == nil || only == name {
                let kept = entries.filter { $0.value != container }
                if kept.count != entries.count {
                    leases[name] = kept.isEmpty ? nil : kept
                    changed = true
                }
            }
            if changed { try writeLeases(leases) }
        }
    }

    package func leases(of container: String) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for (name, entries) in readLeases() {
            let ips = entries.filter { $0.value == container }.map(\.key).sorted()
            if !ips.isEmpty { result[name] = ips }
        }
        return result
    }
}
