#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth

/// How berth places containers in cgroups: the global `--cgroups` flag.
public enum CgroupMode: String, Sendable, CaseIterable {
    /// A group per container: under /sys/fs/cgroup/berth as root, under the
    /// delegated subtree berth runs in otherwise (or as root in a unit with
    /// Delegate=yes).
    case enabled
    /// No group: limits are refused.
    case disabled
    /// Always under berth's own (delegated) cgroup, as root too.
    case split
}

/// cgroup v2 through cgroupfs, with no systemd dependency. `plan` decides
/// everything without touching the system (so bad input and missing
/// controllers fail before anything exists); `CgroupPlan.create` makes the
/// group; the static functions act on an existing group by its directory.
enum Cgroups {
    /// The cgroup v2 mount point: /sys/fs/cgroup on a unified host,
    /// /sys/fs/cgroup/unified on a hybrid one.
    static var v2Mount: String? {
        for path in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] where Files.exists(path + "/cgroup.controllers") {
            return path
        }
        return nil
    }

    /// This process's cgroup in the v2 hierarchy, relative to the mount
    /// ("/user.slice/..."), from /proc/self/cgroup's "0::" line.
    static var ownPath: String? {
        guard let text = try? Files.readString("/proc/self/cgroup") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("0::") {
            let path = String(line.dropFirst(3))
            return path.hasPrefix("/") ? path : nil
        }
        return nil
    }

    /// This process's cgroup directory in the v2 hierarchy, as a host path,
    /// or nil without cgroup v2.
    static var ownV2Directory: String? {
        guard let mount = v2Mount, let own = ownPath else { return nil }
        let directory = join(mount, own)
        return Files.isDirectory(directory) ? directory : nil
    }

    static func join(_ base: String, _ relative: String) -> String {
        relative == "/" || relative.isEmpty ? base : (base == "/" ? relative : base + relative)
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    static func words(_ path: String) -> [String] {
        ((try? Files.readString(path)) ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
    }

    /// The pids in one cgroup (not its children).
    static func procs(_ directory: String) -> [pid_t] {
        words(directory + "/cgroup.procs").compactMap { pid_t($0) }
    }

    /// Every pid in the group and the groups below it.
    static func allProcesses(_ directory: String) -> [pid_t] {
        var result = procs(directory)
        for child in childGroups(directory) { result += allProcesses(child) }
        return result
    }

    static func childGroups(_ directory: String) -> [String] {
        Files.list(directory).map { directory + "/" + $0 }.filter { Files.isDirectory($0) }
    }

    /// Whether processes are in the group or below it (cgroup.events).
    static func isPopulated(_ directory: String) -> Bool {
        CgroupStatsReader.value(of: "populated", inFile: directory + "/cgroup.events") == 1
    }

    static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    static func write(_ value: String, to path: String) throws(Errno) {
        try Files.write(path, value, flags: O_WRONLY | O_CLOEXEC)
    }

    /// Whether this process may manage `path` (relative to `mount`): create
    /// groups in it and move processes through it. For an unprivileged user
    /// that means it was delegated: the directory and its cgroup.procs are
    /// writable.
    static func writable(_ mount: String, _ path: String) -> Bool {
        let directory = join(mount, path)
        return access(directory, W_OK) == 0 && access(directory + "/cgroup.procs", W_OK) == 0
    }

    /// systemd marks a unit's cgroup with the trusted.delegate xattr when the
    /// unit has Delegate=yes (readable by root only).
    static func markedDelegated(_ directory: String) -> Bool {
        var byte: UInt8 = 0
        return berth_getxattr(directory, "trusted.delegate", &byte, 1) > 0
    }

    // MARK: - planning

    /// What runc appends to every device list, so a container can always
    /// use what berth gives it: mknod of any node (opening it is what the
    /// rules govern), the runtime-spec's default devices, ptys and tun, and
    /// each device of linux.devices.
    static func deviceDefaults(_ devices: [LinuxDevice]) -> [DeviceRule] {
        let c = UInt8(ascii: "c"), b = UInt8(ascii: "b")
        var rules = [
            DeviceRule(allow: true, type: c, major: nil, minor: nil, access: "m"),
            DeviceRule(allow: true, type: b, major: nil, minor: nil, access: "m"),
        ]
        for (major, minor) in [(1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9), (136, -1), (5, 2), (10, 200)] as [(Int64, Int64)] {
            rules.append(DeviceRule(allow: true, type: c, major: major, minor: minor < 0 ? nil : minor, access: "rwm"))
        }
        for device in devices where device.type == "c" || device.type == "b" || device.type == "u" {
            rules.append(DeviceRule(allow: true, type: device.type == "b" ? b : c, major: device.major, minor: device.minor, access: "rwm"))
        }
        return rules
    }

    /// Where the container's group goes and what goes into it, or why there
    /// is none. No side effects.
    static func plan(id: String, linux: Linux?, mode: CgroupMode, systemdPath: Bool, rootless: Bool) throws(RuntimeError) -> CgroupPlan {
        var writes = try CgroupResources.writes(linux?.resources)
        let devices = try DeviceFilter.rules(linux?.resources?["devices"]) + deviceDefaults(linux?.devices ?? [])
        // What must be enforced; defaults (containerd's cpu.shares 1024) are
        // written where they can be and dropped where they cannot.
        let limits = writes.filter { !$0.onlyDefault }
        var plan = CgroupPlan(writes: limits, deviceRules: devices)
        func refuse(_ reason: String) -> RuntimeError {
            RuntimeError(.unsupported, "linux.resources.\(limits.first?.field ?? "?") needs a cgroup, and \(reason)")
        }
        if mode == .disabled {
            if !limits.isEmpty { throw refuse("cgroups are disabled (--cgroups=disabled)") }
            return plan
        }
        guard let mount = v2Mount, let own = ownPath else {
            if let write = limits.first {
                throw RuntimeError(.unsupported, "linux.resources.\(write.field) needs the cgroup v2 \"\(write.controller ?? "cgroup")\" controller, which this host lacks (no cgroup v2 hierarchy is mounted)")
            }
            return plan
        }
        // A controller the whole host lacks is the first thing to say.
        let rootControllers = words(mount + "/cgroup.controllers")
        for write in limits {
            if let controller = write.controller, !rootControllers.contains(controller) {
                throw RuntimeError(.unsupported, "linux.resources.\(write.field) needs the cgroup v2 \"\(controller)\" controller, which this host lacks (cgroup v2 at \(mount) has: \(rootControllers.isEmpty ? "none" : rootControllers.joined(separator: " ")))")
            }
        }
        // The base: the group berth may create groups under.
        var base: String? = "/"
        var unusable = ""
        if rootless || mode == .split || (own != "/" && markedDelegated(join(mount, own))) {
            let ownProcs = procs(join(mount, own))
            if own == "/" {
                base = rootless ? nil : "/"
                unusable = "berth runs rootless in the root cgroup"
            } else if writable(mount, own) && ownProcs.allSatisfy({ $0 == getpid() }) {
                // Alone in a delegated group (a unit's main process): move
                // into a leaf so the group may have children with controllers.
                base = own
                plan.moveSelfInto = own + "/supervisor"
            } else if writable(mount, parent(of: own)) && procs(join(mount, parent(of: own))).isEmpty {
                // A leaf shared with other processes (a login shell): the
                // delegated group above it.
                base = parent(of: own)
            } else {
                base = nil
                unusable = "berth's cgroup \(own) is not delegated to uid \(geteuid()) (run it in a unit with Delegate=yes, or a user session with a delegated user@.service)"
            }
        }
        guard let base else {
            if !limits.isEmpty { throw refuse(unusable) }
            return plan
        }
        let path = try containerPath(id: id, cgroupsPath: linux?.cgroupsPath, base: base, systemd: systemdPath, rootless: rootless)
        // Every needed controller must be available where the group goes.
        let baseControllers = words(join(mount, base) + "/cgroup.controllers")
        writes.removeAll { $0.onlyDefault && !baseControllers.contains($0.controller ?? "") }
        plan.writes = writes
        for write in writes {
            guard let controller = write.controller else { continue }
            if !baseControllers.contains(controller) {
                throw RuntimeError(.unsupported, "linux.resources.\(write.field) needs the cgroup v2 \"\(controller)\" controller, which is not delegated to \(base) (it has: \(baseControllers.isEmpty ? "none" : baseControllers.joined(separator: " ")))")
            }
        }
        plan.mount = mount
        plan.base = base
        plan.path = path
        if (linux?.cgroupsPath ?? "").isEmpty { plan.permanentParent = join(mount, join(base, "/berth")) }
        plan.required = !limits.isEmpty || !rootless
        return plan
    }

    /// The container's group relative to the mount: linux.cgroupsPath as
    /// runc reads it (absolute: from the hierarchy's root; relative: under
    /// the base; `slice:prefix:name`: systemd's layout), else
    /// `<base>/berth/<id>`.
    static func containerPath(id: String, cgroupsPath: String?, base: String, systemd: Bool, rootless: Bool) throws(RuntimeError) -> String {
        let path: String
        if let given = cgroupsPath, !given.isEmpty {
            let parts = given.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 3 && (systemd || !given.hasPrefix("/")) {
                path = join(base, try systemdPath(slice: parts[0], prefix: parts[1], name: parts[2], rootless: rootless))
            } else if given.hasPrefix("/") {
                path = given
            } else {
                path = join(base, "/" + given)
            }
        } else {
            path = join(base, "/berth/" + id)
        }
        let components = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard path.hasPrefix("/"), !components.isEmpty, !components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw RuntimeError(.invalidArgument, "linux.cgroupsPath \"\(cgroupsPath ?? path)\": not a cgroup path (no empty, \".\" or \"..\" parts)")
        }
        return path
    }

    /// runc's `slice:prefix:name`: "a-b.slice:docker:ID" is
    /// /a.slice/a-b.slice/docker-ID.scope; an empty slice is system.slice
    /// (user.slice rootless); a name ending in .slice is used as it is.
    static func systemdPath(slice: String, prefix: String, name: String, rootless: Bool) throws(RuntimeError) -> String {
        let slice = slice.isEmpty ? (rootless ? "user.slice" : "system.slice") : slice
        guard slice.hasSuffix(".slice"), !name.isEmpty, !name.contains("/"), !slice.contains("/"), !prefix.contains("/") else {
            throw RuntimeError(.invalidArgument, "linux.cgroupsPath \"\(slice):\(prefix):\(name)\": expected slice:prefix:name with a slice ending in .slice")
        }
        var path = ""
        if slice != "-.slice" {
            let stem = slice.dropLast(6)
            guard !stem.hasPrefix("-"), !stem.hasSuffix("-"), !stem.contains("--") else {
                throw RuntimeError(.invalidArgument, "linux.cgroupsPath: invalid slice name \"\(slice)\"")
            }
            var prefixSoFar = ""
            for part in stem.split(separator: "-") {
                prefixSoFar += prefixSoFar.isEmpty ? String(part) : "-" + part
                path += "/" + prefixSoFar + ".slice"
            }
        }
        let unit = name.hasSuffix(".slice") ? name : (prefix.isEmpty ? name : "\(prefix)-\(name).scope")
        return path + "/" + unit
    }

    // MARK: - operations on an existing group

    /// Sends `signal` to every process of the group; SIGKILL through cgroup.kill.
    static func signal(_ directory: String, _ signal: Int32) {
        if signal == SIGKILL, (try? write("1", to: directory + "/cgroup.kill")) != nil { return }
        for pid in allProcesses(directory) { _ = kill(pid, signal) }
    }

    /// Waits until `file` (cgroup.events) has the line "key value": the
    /// kernel wakes POLLPRI pollers when it changes.
    @discardableResult
    static func waitFor(_ key: String, _ value: String, in file: String, milliseconds: Int32) -> Bool {
        guard let fd = try? FileDescriptor.open(file, O_RDONLY | O_CLOEXEC) else { return false }
        defer { fd.close() }
        let end = monotonicMilliseconds() + Int64(milliseconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(fd.rawValue, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                for line in String(decoding: buffer[0..<count], as: UTF8.self).split(separator: "\n") where line == "\(key) \(value)" {
                    return true
                }
            }
            let left = end - monotonicMilliseconds()
            if left <= 0 { return false }
            var entry = pollfd(fd: fd.rawValue, events: Int16(POLLPRI), revents: 0)
            _ = poll(&entry, 1, Int32(min(left, 100)))
        }
    }

    /// Freezes or thaws the group and waits until the kernel says it is done.
    static func freeze(_ directory: String, _ frozen: Bool) throws(RuntimeError) {
        try step("write \(directory)/cgroup.freeze") { () throws(Errno) in try write(frozen ? "1" : "0", to: directory + "/cgroup.freeze") }
        guard waitFor("frozen", frozen ? "1" : "0", in: directory + "/cgroup.events", milliseconds: 10_000) else {
            throw RuntimeError(.timeout, "\(directory): the kernel did not report \"frozen \(frozen ? 1 : 0)\" within 10 s")
        }
    }

    static func isFrozen(_ directory: String) -> Bool {
        (try? Files.readString(directory + "/cgroup.freeze"))?.trimmed == "1"
    }

    /// Kills what is left in the group, then removes it, its child groups,
    /// and the parents berth created for it (those still empty).
    static func remove(_ directory: String, createdParents: [String]) {
        guard Files.isDirectory(directory) else { return }
        if isPopulated(directory) {
            signal(directory, SIGKILL)
            waitFor("populated", "0", in: directory + "/cgroup.events", milliseconds: 10_000)
        }
        removeTree(directory)
        for parent in createdParents.reversed() { _ = rmdir(parent) }
    }

    private static func removeTree(_ directory: String) {
        for child in childGroups(directory) { removeTree(child) }
        // rmdir can race the last exit (EBUSY for a moment): retry briefly.
        for _ in 0..<50 {
            if rmdir(directory) == 0 || Errno.current != .busy { return }
            usleep(2000)
        }
    }
}

/// What `Cgroups.plan` decided: the group to create, or none (`path` nil).
struct CgroupPlan: Sendable {
    var writes: [CgroupWrite]
    var deviceRules: [DeviceRule]
    var mount = ""
    var base = "/"
    var path: String?
    /// Whether failing to create the group is an error (limits were asked
    /// for, or berth is root); rootless without limits runs without one.
    var required = true
    /// berth's own process moves here first (split: its group gets children).
    var moveSelfInto: String?
    /// <base>/berth, the parent of the default groups: kept when its last
    /// container goes, like /run/berth, so runs do not pay to recreate it.
    var permanentParent: String?

    /// Makes the group: parents (enabling controllers on the way), limits,
    /// device program. On failure removes what it made.
    func create() throws(RuntimeError) -> CgroupHandle? {
        guard let path else { return nil }
        var created: [String] = []
        do throws(RuntimeError) {
            if let moveSelfInto {
                let directory = Cgroups.join(mount, moveSelfInto)
                if mkdir(directory, 0o755) != 0 && Errno.current != .exists { throw RuntimeError.system("create \(directory)", Errno.current) }
                try step("move berth into \(directory)") { () throws(Errno) in try Cgroups.write(String(getpid()), to: directory + "/cgroup.procs") }
            }
            // An absolute cgroupsPath outside the base is made from the root.
            let start = path.hasPrefix(base == "/" ? "/" : base + "/") ? base : "/"
            return try createFrom(start, path: path, created: &created)
        } catch {
            for directory in created.reversed() { _ = rmdir(directory) }
            if !required, error.code == .permissionDenied || error.code == .notFound { return nil }
            throw error
        }
    }

    private func createFrom(_ start: String, path: String, created: inout [String]) throws(RuntimeError) -> CgroupHandle {
        var current = start
        let parts = path.dropFirst(start == "/" ? 1 : start.count + 1).split(separator: "/")
        for part in parts {
            try enableControllers(in: Cgroups.join(mount, current))
            current = current == "/" ? "/" + part : current + "/" + part
            let directory = Cgroups.join(mount, current)
            if mkdir(directory, 0o755) == 0 {
                if directory != permanentParent { created.append(directory) }
            } else if Errno.current != .exists {
                throw RuntimeError.system("create cgroup \(directory)", Errno.current)
            }
        }
        let directory = Cgroups.join(mount, path)
        if created.last != directory && Cgroups.isPopulated(directory) {
            throw RuntimeError(.exists, "cgroup \(directory) already has processes in it")
        }
        for write in writes { try Self.apply(write, in: directory) }
        let fd = try step("open \(directory)") { () throws(Errno) in try FileDescriptor.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        if !DeviceFilter.allowsEverything(deviceRules) && !RuntimePaths.isRootless {
            do throws(RuntimeError) {
                try DeviceFilter.attach(deviceRules, cgroupFD: fd.rawValue)
            } catch {
                fd.close()
                throw error
            }
        }
        return CgroupHandle(directory: directory, fd: fd, createdParents: created.filter { $0 != directory })
    }

    /// runc enables every controller a group has for its children, so a
    /// later `update` can set any limit. The hierarchy's root is the host's
    /// and shared: there only the controllers the limits need are enabled.
    private func enableControllers(in directory: String) throws(RuntimeError) {
        let needed = CgroupResources.controllers(writes)
        if directory == mount && needed.isEmpty { return }
        let available = Cgroups.words(directory + "/cgroup.controllers")
        let enabled = Set(Cgroups.words(directory + "/cgroup.subtree_control"))
        let wanted = directory == mount ? needed : available
        let missing = wanted.filter { available.contains($0) && !enabled.contains($0) }
        guard !missing.isEmpty else { return }
        do {
            try Cgroups.write(missing.map { "+" + $0 }.joined(separator: " "), to: directory + "/cgroup.subtree_control")
        } catch {
            // Only a failure for the controllers the limits need matters.
            let failed = needed.filter(missing.contains)
            guard failed.isEmpty else {
                throw RuntimeError.system("enable the \(failed.joined(separator: ", ")) controller in \(directory)/cgroup.subtree_control", error)
            }
        }
    }

    static func apply(_ write: CgroupWrite, in directory: String) throws(RuntimeError) {
        var file = write.file, value = write.value
        if let alternative = write.alternatives.first(where: { Files.exists(directory + "/" + $0.file) }) {
            (file, value) = (alternative.file, alternative.value)
        }
        do {
            try Cgroups.write(value, to: directory + "/" + file)
        } catch {
            let why = error == .noSuchFile ? "\(file) does not exist in \(directory) (the kernel or the enabled controllers lack it)" : "write \"\(value)\" to \(file): \(error)"
            throw RuntimeError(.invalidArgument, "linux.resources.\(write.field): \(why)")
        }
    }
}

/// A container's group, made by `CgroupPlan.create`.
struct CgroupHandle: Sendable {
    let directory: String
    /// Open for clone3's CLONE_INTO_CGROUP until `closeDescriptor`.
    private(set) var fd: FileDescriptor?
    let createdParents: [String]

    init(directory: String, fd: FileDescriptor, createdParents: [String]) {
        self.directory = directory
        self.fd = fd
        self.createdParents = createdParents
    }

    mutating func closeDescriptor() {
        fd?.close()
        fd = nil
    }

    /// Kills what is in the group and removes it (and its descriptor).
    mutating func remove() {
        closeDescriptor()
        Cgroups.remove(directory, createdParents: createdParents)
    }
}
