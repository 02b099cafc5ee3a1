#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth

/// A user's subordinate id ranges, from /etc/subuid and /etc/subgid
/// (`name:start:count` or `uid:start:count`, one range per line).
package struct SubordinateIDs: Equatable, Sendable {
    package var uids: [ClosedRange<UInt32>]
    package var gids: [ClosedRange<UInt32>]

    package static func parse(_ text: String, user: String, id: UInt32) -> [ClosedRange<UInt32>] {
        var ranges: [ClosedRange<UInt32>] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 3, fields[0] == user || fields[0] == Substring(String(id)),
                  let start = UInt32(fields[1]), let count = UInt32(fields[2]), count > 0,
                  start <= UInt32.max - (count - 1) else { continue }
            ranges.append(start...(start + count - 1))
        }
        return ranges
    }

    package static func current(subuid: String = "/etc/subuid", subgid: String = "/etc/subgid") -> SubordinateIDs {
        let uid = getuid()
        let user = getpwuid(uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? String(uid)
        let uids = (try? Files.readString(subuid)).map { parse($0, user: user, id: uid) } ?? []
        let gids = (try? Files.readString(subgid)).map { parse($0, user: user, id: uid) } ?? []
        return SubordinateIDs(uids: uids, gids: gids)
    }

    /// The maps a rootless user namespace gets, as podman makes them: 0 is the
    /// user, 1… are the subordinate ranges in order.
    package func mappings(ownUID: UInt32, ownGID: UInt32) -> (uid: [LinuxIDMapping], gid: [LinuxIDMapping]) {
        func build(_ own: UInt32, _ ranges: [ClosedRange<UInt32>]) -> [LinuxIDMapping] {
            var result = [LinuxIDMapping(containerID: 0, hostID: own, size: 1)]
            var next: UInt32 = 1
            for range in ranges {
                let size = range.upperBound - range.lowerBound + 1
                result.append(LinuxIDMapping(containerID: next, hostID: range.lowerBound, size: size))
                next += size
            }
            return result
        }
        return (build(ownUID, uids), build(ownGID, gids))
    }
}

/// Rootless store work runs as uid 0 of a user namespace that maps the
/// user's subordinate ids (as rootless podman does), so layer files get
/// their real owners and can later be removed. `enter()` clones a child into
/// such a namespace and returns in the child; the parent maps it, forwards
/// signals and exits with the child's status. The caller must still be
/// single-threaded.
package enum UserNamespaceSession {
    /// Set in the child so nested invocations and `RuntimePaths` know.
    package static let marker = "_BERTH_USERNS"

    package static var isInside: Bool { getenv(marker) != nil }

    /// Whether store commands need the namespace: unprivileged and not yet in one.
    package static var needed: Bool { geteuid() != 0 && !isInside }

    package static func enter() throws(RuntimeError) {
        let ids = SubordinateIDs.current()
        let user = getpwuid(getuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? String(getuid())
        guard !ids.uids.isEmpty else {
            throw RuntimeError(.permissionDenied, "no subordinate uid range for \(user) in /etc/subuid: rootless images need one (usermod --add-subuids 100000-165535 \(user))")
        }
        guard !ids.gids.isEmpty else {
            throw RuntimeError(.permissionDenied, "no subordinate gid range for \(user) in /etc/subgid: rootless images need one (usermod --add-subgids 100000-165535 \(user))")
        }
        let maps = ids.mappings(ownUID: getuid(), ownGID: getgid())
        let (parentEnd, childEnd): (FileDescriptor, FileDescriptor)
        do { (parentEnd, childEnd) = try makeSocketPair() } catch { throw RuntimeError.system("socketpair", error) }
        var oldMask = [UInt8](repeating: 0, count: 128)
        _ = berth_block_all_signals(&oldMask)
        let pid: pid_t
        do { pid = try cloneProcess(flags: UInt(BERTH_CLONE_NEWUSER)) } catch {
            _ = berth_restore_signals(oldMask)
            throw RuntimeError.system("clone a user namespace", error)
        }
        if pid == 0 {
            parentEnd.close()
            _ = berth_restore_signals(oldMask)
            let channel = SyncChannel(childEnd)
            guard let message = try? channel.receive(), message.text == "go" else { _exit(125) }
            childEnd.close()
            setenv(marker, "1", 1)
            // Become root of the namespace for real (the ids took effect with the maps).
            guard berth_setresgid(0, 0, 0) == 0, berth_setresuid(0, 0, 0) == 0 else { _exit(125) }
            return
        }
        childEnd.close()
        do {
            try IDMapper.write(pid: pid, uidMappings: maps.uid, gidMappings: maps.gid)
            try? SyncChannel(parentEnd).send("go")
        } catch {
            parentEnd.close()
            _ = Glibc.kill(pid, SIGKILL)
            _ = try? waitForProcess(pid)
            _ = berth_restore_signals(oldMask)
            throw error
        }
        parentEnd.close()
        let status = Supervisor(pid: pid, master: nil).wait()
        switch status {
        case let .exited(code): exit(code)
        case let .signaled(signal): exit(128 + signal)
        }
    }
}
