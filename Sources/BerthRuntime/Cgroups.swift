#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS

/// linux.resources. Limits need cgroup v2 controllers; a limit that cannot
/// be applied is an error, never silently ignored.
enum Cgroups {
    /// The cgroup v2 mount point: /sys/fs/cgroup on a unified host,
    /// /sys/fs/cgroup/unified on a hybrid one.
    static var v2Mount: String? {
        for path in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] where Files.exists(path + "/cgroup.controllers") {
            return path
        }
        return nil
    }

    /// This process's cgroup directory in the v2 hierarchy, as a host path
    /// (`/sys/fs/cgroup/unified/user.slice/...`), or nil without cgroup v2.
    /// Read before clone(): inside a new cgroup namespace it reads "/".
    static var ownV2Directory: String? {
        guard let mount = v2Mount, let text = try? Files.readString("/proc/self/cgroup") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("0::") {
            let path = String(line.dropFirst(3))
            let directory = path == "/" ? mount : mount + path
            return Files.isDirectory(directory) ? directory : nil
        }
        return nil
    }

    /// True when `resources` asks for nothing berth must enforce: podman
    /// and containerd always send the default device rules and zero values.
    static func onlyDefaults(_ resources: JSONValue) -> Bool {
        guard case .object(let object) = resources else { return resources.isEmpty }
        return object.allSatisfy { key, value in key == "devices" || isUnset(value) || isDefaultCPUWeight(key, value) }
    }

    /// Zero, empty, or -1 ("unlimited", as in `memory.swap: -1`): no limit.
    static func isUnset(_ value: JSONValue) -> Bool {
        switch value {
        case .integer(-1): true
        case .object(let object): object.values.allSatisfy(isUnset)
        case .array(let array): array.allSatisfy(isUnset)
        default: value.isEmpty
        }
    }

    /// `cpu.shares` 1024 is cgroup v1's default weight, which containerd
    /// sends for every container: a relative weight equal to the default,
    /// not a limit.
    static func isDefaultCPUWeight(_ key: String, _ value: JSONValue) -> Bool {
        guard key == "cpu", case .object(let cpu) = value else { return false }
        return cpu.allSatisfy { name, setting in
            (name == "shares" && setting == .integer(1024)) || isUnset(setting)
        }
    }

    static let controllerFor: [String: String] = [
        "memory": "memory", "cpu": "cpu", "pids": "pids", "blockIO": "io", "hugepageLimits": "hugetlb",
        "network": "net_cls", "rdma": "rdma",
    ]

    static func checkLimitsSupported(_ resources: JSONValue) throws(RuntimeError) {
        guard case .object(let object) = resources else { return }
        let available: [String]
        if let mount = v2Mount, let text = try? Files.readString(mount + "/cgroup.controllers") {
            available = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        } else {
            available = []
        }
        let where_ = v2Mount.map { "cgroup v2 at \($0) has: \(available.isEmpty ? "none" : available.joined(separator: " "))" }
            ?? "no cgroup v2 hierarchy is mounted"
        for key in object.keys.sorted() where key != "devices" && !isUnset(object[key]!) && !isDefaultCPUWeight(key, object[key]!) {
            let controller = controllerFor[key] ?? key
            if !available.contains(controller) {
                throw RuntimeError(.unsupported, "linux.resources.\(key) needs the cgroup v2 \"\(controller)\" controller, which this host lacks (\(where_))")
            }
            throw RuntimeError(.unsupported, "linux.resources.\(key): cgroup limits are not implemented in this berth yet")
        }
    }
}
