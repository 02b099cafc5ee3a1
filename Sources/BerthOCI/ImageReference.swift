/// An image reference as users type it, normalised as docker and podman do:
/// `busybox` → `docker.io/library/busybox:latest`,
/// `127.0.0.1:5000/ns/app:v1`, `name@sha256:…`, `name:tag@sha256:…`.
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// The registry host (and port): `docker.io`, `127.0.0.1:5000`.
    public var registry: String
    /// The repository path in the registry: `library/busybox`.
    public var repository: String
    public var tag: String?
    public var digest: Digest?
    /// False when the user gave no registry (`busybox`, `ns/app`): such a
    /// name may be resolved through `unqualified-search-registries`.
    public var qualified: Bool

    public static let defaultRegistry = "docker.io"
    public static let defaultTag = "latest"

    public enum ParseError: Error, CustomStringConvertible, Equatable {
        case empty
        case invalid(String, reason: String)

        public var description: String {
            switch self {
            case .empty: return "empty image reference"
            case let .invalid(text, reason): return "invalid image reference \"\(text)\": \(reason)"
            }
        }
    }

    public init(registry: String, repository: String, tag: String? = nil, digest: Digest? = nil, qualified: Bool = true) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
        self.qualified = qualified
    }

    /// Parses `text`. A name without tag or digest gets `latest`; a docker.io
    /// name with a single path component gets `library/`.
    public init(parsing text: String) throws(ParseError) {
        guard !text.isEmpty else { throw .empty }
        guard text.utf8.count <= 4096 else { throw .invalid(String(text.prefix(40)) + "…", reason: "too long") }
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            let digestText = String(rest[rest.index(after: at)...])
            guard let parsed = Digest(digestText) else { throw .invalid(text, reason: "bad digest \"\(digestText)\"") }
            digest = parsed
            rest = rest[..<at]
        }
        var tag: String?
        // A tag follows the last ':' that comes after the last '/'.
        if let colon = rest.lastIndex(of: ":"), rest[colon...].firstIndex(of: "/") == nil {
            let tagText = String(rest[rest.index(after: colon)...])
            guard ImageReference.isValidTag(tagText) else { throw .invalid(text, reason: "bad tag \"\(tagText)\"") }
            tag = tagText
            rest = rest[..<colon]
        }
        var components = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        var registry = ImageReference.defaultRegistry
        var qualified = false
        if components.count > 1, let first = components.first,
           first.contains(".") || first.contains(":") || first == "localhost" || first.contains(where: { $0.isUppercase }) {
            guard ImageReference.isValidRegistry(first) else { throw .invalid(text, reason: "bad registry \"\(first)\"") }
            registry = first
            qualified = true
            components.removeFirst()
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" { registry = ImageReference.defaultRegistry }
        guard !components.isEmpty else { throw .invalid(text, reason: "no repository name") }
        for component in components {
            guard ImageReference.isValidPathComponent(component) else {
                if component.contains(where: { $0.isUppercase }) {
                    throw .invalid(text, reason: "repository name must be lowercase")
                }
                throw .invalid(text, reason: "bad path component \"\(component)\"")
            }
        }
        if registry == ImageReference.defaultRegistry && components.count == 1 { components.insert("library", at: 0) }
        let repository = components.joined(separator: "/")
        guard repository.utf8.count <= 255 else { throw .invalid(text, reason: "repository name longer than 255 characters") }
        if tag == nil && digest == nil { tag = ImageReference.defaultTag }
        self.init(registry: registry, repository: repository, tag: tag, digest: digest, qualified: qualified)
    }

    /// `registry/repository`.
    public var name: String { "\(registry)/\(repository)" }

    public var description: String {
        var text = name
        if let tag { text += ":\(tag)" }
        if let digest { text += "@\(digest)" }
        return text
    }

    /// The same repository in another registry (for search registries and mirrors).
    public func inRegistry(_ registry: String) -> ImageReference {
        var copy = self
        copy.registry = registry
        copy.qualified = true
        if registry != ImageReference.defaultRegistry, repository.hasPrefix("library/"), !qualified {
            // `busybox` searched in another registry is `registry/busybox`,
            // as podman resolves it (library/ is docker.io's convention).
            copy.repository = String(repository.dropFirst("library/".count))
        }
        return copy
    }

    static func isValidTag(_ tag: String) -> Bool {
        let bytes = Array(tag.utf8)
        guard !bytes.isEmpty, bytes.count <= 128 else { return false }
        func word(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b == 95 }
        guard word(bytes[0]) else { return false }
        return bytes.dropFirst().allSatisfy { word($0) || $0 == 46 || $0 == 45 }
    }

    /// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
    static func isValidPathComponent(_ component: String) -> Bool {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 48 && b <= 57) || (b >= 97 && b <= 122) }
        guard alnum(first), alnum(last) else { return false }
        var index = 0
        while index < bytes.count {
            if alnum(bytes[index]) { index += 1; continue }
            // A separator: '.', '_', '__', or a run of '-'.
            var end = index
            if bytes[index] == 46 { end += 1 }
            else if bytes[index] == 95 { end += 1; if end < bytes.count, bytes[end] == 95 { end += 1 } }
            else if bytes[index] == 45 { while end < bytes.count, bytes[end] == 45 { end += 1 } }
            else { return false }
            guard end < bytes.count, alnum(bytes[end]) else { return false }
            index = end
        }
        return true
    }

    static func isValidRegistry(_ host: String) -> Bool {
        guard !host.isEmpty, host.utf8.count <= 255 else { return false }
        var hostPart = Substring(host)
        if host.hasPrefix("[") {
            // [IPv6]:port
            guard let close = host.firstIndex(of: "]") else { return false }
            hostPart = host[host.index(after: host.startIndex)..<close]
            let after = host[host.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let port = Int(after.dropFirst()), (1...65535).contains(port) else { return false }
            }
            return hostPart.allSatisfy { $0.isHexDigit || $0 == ":" }
        }
        if let colon = host.lastIndex(of: ":") {
            guard let port = Int(host[host.index(after: colon)...]), (1...65535).contains(port) else { return false }
            hostPart = host[..<colon]
        }
        return !hostPart.isEmpty && hostPart.allSatisfy { $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" }
    }
}
