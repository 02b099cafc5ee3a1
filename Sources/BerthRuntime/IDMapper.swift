#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS

/// Writes a new user namespace's uid/gid maps from the parent: directly as
/// root, or for an unprivileged caller directly when the map is just the
/// caller's own id, else through the setuid helpers newuidmap/newgidmap,
/// which check /etc/subuid and /etc/subgid.
package enum IDMapper {
    package static func write(pid: pid_t, uidMappings: [LinuxIDMapping], gidMappings: [LinuxIDMapping]) throws(RuntimeError) {
        if !RuntimePaths.isRootless {
            try writeDirectly(pid: pid, file: "gid_map", gidMappings)
            try writeDirectly(pid: pid, file: "uid_map", uidMappings)
            return
        }
        let ownUID = geteuid(), ownGID = getegid()
        let uidIsOwn = uidMappings.count == 1 && uidMappings[0].hostID == ownUID && uidMappings[0].size == 1
        let gidIsOwn = gidMappings.count == 1 && gidMappings[0].hostID == ownGID && gidMappings[0].size == 1
        if uidIsOwn {
            try writeDirectly(pid: pid, file: "uid_map", uidMappings)
        } else {
            try runHelper("newuidmap", pid: pid, uidMappings)
        }
        if gidIsOwn {
            // An unprivileged process may map its own gid only after denying setgroups.
            try step("write /proc/\(pid)/setgroups") { () throws(Errno) in try Files.write("/proc/\(pid)/setgroups", "deny", flags: O_WRONLY) }
            try writeDirectly(pid: pid, file: "gid_map", gidMappings)
        } else {
            try runHelper("newgidmap", pid: pid, gidMappings)
        }
    }

    static func text(_ mappings: [LinuxIDMapping]) -> String {
        mappings.map { "\($0.containerID) \($0.hostID) \($0.size)\n" }.joined()
    }

    static func writeDirectly(pid: pid_t, file: String, _ mappings: [LinuxIDMapping]) throws(RuntimeError) {
        do {
            try Files.write("/proc/\(pid)/\(file)", text(mappings), flags: O_WRONLY)
        } catch {
            throw RuntimeError(.permissionDenied, "write \(file) \"\(text(mappings).trimmed.split(separator: "\n").joined(separator: ", "))\": \(error)")
        }
    }

    static func runHelper(_ name: String, pid: pid_t, _ mappings: [LinuxIDMapping]) throws(RuntimeError) {
        guard let path = ["/usr/bin/", "/bin/", "/usr/sbin/", "/usr/local/bin/"].map({ $0 + name }).first(where: { access($0, X_OK) == 0 }) else {
            throw RuntimeError(.notFound, "\(name) not found: install the uidmap package, or map only your own id")
        }
        var arguments = [name, String(pid)]
        for m in mappings { arguments += [String(m.containerID), String(m.hostID), String(m.size)] }
        let result: Subprocess.Result
        do {
            result = try Subprocess.run(path, arguments: arguments, environment: [], captureStandardError: true)
        } catch {
            throw RuntimeError.system("run \(name)", error)
        }
        guard result.status == .exited(0) else {
            let detail = result.standardError.trimmed.split(separator: "\n").last.map(String.init) ?? HookRunner.describe(result.status)
            throw RuntimeError(.permissionDenied, "\(name) \(arguments.dropFirst().joined(separator: " ")) failed: \(detail)")
        }
    }
}
