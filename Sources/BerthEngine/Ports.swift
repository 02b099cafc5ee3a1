#if canImport(Glibc)
import Glibc
#endif
import BerthOS

/// One `-p`: host address and port(s) to container port(s).
package struct PortMapping: Codable, Hashable, Sendable {
    /// "" for every address.
    package var hostIP: String
    package var hostPort: UInt16
    package var containerPort: UInt16
    /// tcp or udp.
    package var proto: String
    /// How many consecutive ports from each start.
    package var range: UInt16

    package init(hostIP: String, hostPort: UInt16, containerPort: UInt16, proto: String, range: UInt16 = 1) {
        self.hostIP = hostIP
        self.hostPort = hostPort
        self.containerPort = containerPort
        self.proto = proto
        self.range = range
    }

    /// docker's -p forms: `[hostIP:][hostPort:]containerPort[/proto]`,
    /// with `start-end` ranges and `[v6]` host addresses. A missing host
    /// port is 0 (a free one is chosen by `assignHostPorts`).
    package static func parse(_ text: String) throws(EngineError) -> PortMapping {
        func bad(_ why: String) -> EngineError { EngineError(.invalidArgument, "-p \"\(text)\": \(why)") }
        var body = Substring(text)
        var proto = "tcp"
        if let slash = body.lastIndex(of: "/") {
            proto = String(body[body.index(after: slash)...]).lowercased()
            body = body[..<slash]
            guard proto == "tcp" || proto == "udp" else { throw bad("protocol must be tcp or udp") }
        }
        var hostIP = ""
        if body.hasPrefix("[") {
            guard let close = body.firstIndex(of: "]") else { throw bad("missing ] after the IPv6 address") }
            hostIP = String(body[body.index(after: body.startIndex)..<close])
            body = body[body.index(after: close)...]
            guard body.hasPrefix(":") else { throw bad("expected :PORT after the host address") }
            body = body.dropFirst()
            let rest = body.split(separator: ":", omittingEmptySubsequences: false)
            guard rest.count == 2 else { throw bad("expected [IP]:HOSTPORT:CONTAINERPORT") }
            return try make(hostIP: hostIP, host: String(rest[0]), container: String(rest[1]), proto: proto, bad: bad)
        }
        let parts = body.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 1: return try make(hostIP: "", host: "", container: parts[0], proto: proto, bad: bad)
        case 2: return try make(hostIP: "", host: parts[0], container: parts[1], proto: proto, bad: bad)
        case 3: return try make(hostIP: parts[0], host: parts[1], container: parts[2], proto: proto, bad: bad)
        default: throw bad("expected [IP:][HOSTPORT:]CONTAINERPORT[/PROTOCOL]")
        }
    }

    private static func make(hostIP: String, host: String, container: String, proto: String,
                             bad: (String) -> EngineError) throws(EngineError) -> PortMapping {
        if !hostIP.isEmpty {
            guard let ip = IPAddress(hostIP) else { throw bad("\(hostIP) is not an IP address") }
            _ = ip
        }
        guard let (containerStart, containerCount) = range(container) else { throw bad("\"\(container)\" is not a port (1-65535) or range") }
        var hostStart: UInt16 = 0
        if !host.isEmpty {
            guard let (start, count) = range(host) else { throw bad("\"\(host)\" is not a port (1-65535) or range") }
            guard count == containerCount else { throw bad("the host and container ranges differ in length") }
            hostStart = start
        } else if containerCount > 1 {
            throw bad("a range needs its host ports given")
        }
        return PortMapping(hostIP: hostIP, hostPort: hostStart, containerPort: containerStart, proto: proto, range: containerCount)
    }

    private static func range(_ text: String) -> (UInt16, UInt16)? {
        let ends = text.split(separator: "-", omittingEmptySubsequences: false)
        guard ends.count == 1 || ends.count == 2, let start = UInt16(ends[0]), start > 0 else { return nil }
        guard ends.count == 2 else { return (start, 1) }
        guard let end = UInt16(ends[1]), end >= start else { return nil }
        return (start, end - start + 1)
    }

    /// "80/tcp" of an image's ExposedPorts or --expose (a range too).
    package static func exposed(_ text: String) throws(EngineError) -> [(UInt16, String)] {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        let proto = parts.count > 1 ? String(parts[1]).lowercased() : "tcp"
        guard parts.count <= 2, proto == "tcp" || proto == "udp", let (start, count) = range(String(parts[0])) else {
            throw EngineError(.invalidArgument, "--expose \"\(text)\": expected PORT[/tcp|udp] or START-END")
        }
        return (0..<count).map { (start + $0, proto) }
    }

    /// podman's PORTS column and `port` output: 127.0.0.1:8080->80/tcp.
    package var display: String {
        let ip = hostIP.isEmpty ? "0.0.0.0" : (hostIP.contains(":") ? "[\(hostIP)]" : hostIP)
        if range == 1 { return "\(ip):\(hostPort)->\(containerPort)/\(proto)" }
        return "\(ip):\(hostPort)-\(hostPort + range - 1)->\(containerPort)-\(containerPort + range - 1)/\(proto)"
    }

    /// Each single port of the mapping.
    package var singles: [PortMapping] {
        (0..<range).map { PortMapping(hostIP: hostIP, hostPort: hostPort + $0, containerPort: containerPort + $0, proto: proto) }
    }
}

/// Host sockets bound to published ports: whether a port is free, a free
/// port for `-p CONTAINERPORT`, and holding ports while netavark forwards them.
package enum PortReservation {
    /// Binds (not listens) the host side of `mapping`; the caller closes it.
    package static func bind(hostIP: String, port: UInt16, proto: String) throws(EngineError) -> Int32 {
        let v6 = hostIP.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(proto == "udp" ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw EngineError(.failed, "socket for port \(port): \(Errno.current)") }
        var one: Int32 = 1
        // Not blocked by connections of an earlier run in TIME_WAIT; still refused while anyone listens.
        if proto == "tcp" { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) }
        var result: Int32
        if v6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            _ = inet_pton(AF_INET6, hostIP, &address.sin6_addr)
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            _ = inet_pton(AF_INET, hostIP.isEmpty ? "0.0.0.0" : hostIP, &address.sin_addr)
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        if result != 0 {
            let error = Errno.current
            close(fd)
            let shown = hostIP.isEmpty ? "0.0.0.0" : (v6 ? "[\(hostIP)]" : hostIP)
            if error == .addressInUse { throw EngineError(.exists, "port \(shown):\(port)/\(proto) is already in use") }
            throw EngineError(.invalidArgument, "cannot bind \(shown):\(port)/\(proto): \(error)")
        }
        return fd
    }

    /// The port the kernel picked for a socket bound to port 0.
    static func boundPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { pointer in
            if family == sa_family_t(AF_INET6) {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
    }

    /// Gives every mapping without a host port a free one (as podman does at create).
    package static func assignHostPorts(_ mappings: [PortMapping]) throws(EngineError) -> [PortMapping] {
        var result: [PortMapping] = []
        for var mapping in mappings {
            if mapping.hostPort == 0 {
                let fd = try bind(hostIP: mapping.hostIP, port: 0, proto: mapping.proto)
                mapping.hostPort = boundPort(fd)
                close(fd)
            }
            result.append(mapping)
        }
        return result
    }

    /// Binds every host port of `mappings`: all of them, or none (closed again) and the first error.
    package static func reserve(_ mappings: [PortMapping]) throws(EngineError) -> [Int32] {
        var held: [Int32] = []
        do {
            for mapping in mappings {
                for single in mapping.singles {
                    let fd = try bind(hostIP: single.hostIP, port: single.hostPort, proto: single.proto)
                    held.append(fd)
                    // Listening, so that no other socket can take the port (SO_REUSEADDR
                    // lets two merely bound sockets share one). netavark's DNAT
                    // sends the connections to the container before they reach it.
                    if single.proto == "tcp" { _ = listen(fd, 1) }
                }
            }
        } catch {
            for fd in held { close(fd) }
            throw error
        }
        return held
    }
}
