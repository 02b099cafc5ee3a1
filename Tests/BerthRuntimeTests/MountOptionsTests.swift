import Testing
@testable import BerthRuntime

/// mount(2) flag values from <linux/mount.h>, spelled out so a wrong
/// mapping in MountOptions cannot hide behind the same constant.
enum MS {
    static let rdonly: UInt = 1, nosuid: UInt = 2, nodev: UInt = 4, noexec: UInt = 8
    static let synchronous: UInt = 16, remount: UInt = 32, mandlock: UInt = 64, dirsync: UInt = 128
    static let noatime: UInt = 1024, nodiratime: UInt = 2048, rec: UInt = 16384, silent: UInt = 32768
    static let unbindable: UInt = 1 << 17, `private`: UInt = 1 << 18, slave: UInt = 1 << 19, shared: UInt = 1 << 20
    static let relatime: UInt = 1 << 21, iversion: UInt = 1 << 23, strictatime: UInt = 1 << 24, lazytime: UInt = 1 << 25
}

struct MountOptionsCase: Sendable, CustomTestStringConvertible {
    var options: [String]
    var flags: UInt = 0
    var cleared: UInt = 0
    var propagation: [UInt] = []
    var data: String? = nil
    var bind = false
    var recursive = false
    var testDescription: String { options.isEmpty ? "[]" : options.joined(separator: ",") }
}

@Suite("MountOptions splits config.json options the way mount(2) wants them")
struct MountOptionsTests {
    static let cases: [MountOptionsCase] = [
        .init(options: []),
        .init(options: ["ro"], flags: MS.rdonly),
        .init(options: ["rw"], cleared: MS.rdonly),
        .init(options: ["nosuid"], flags: MS.nosuid),
        .init(options: ["nodev"], flags: MS.nodev),
        .init(options: ["noexec"], flags: MS.noexec),
        .init(options: ["suid", "dev", "exec"], cleared: MS.nosuid | MS.nodev | MS.noexec),
        .init(options: ["nosuid", "nodev", "noexec", "ro"], flags: MS.nosuid | MS.nodev | MS.noexec | MS.rdonly),
        .init(options: ["sync", "dirsync", "remount", "mand"], flags: MS.synchronous | MS.dirsync | MS.remount | MS.mandlock),
        .init(options: ["noatime", "nodiratime"], flags: MS.noatime | MS.nodiratime),
        .init(options: ["relatime"], flags: MS.relatime),
        .init(options: ["strictatime"], flags: MS.strictatime),
        .init(options: ["atime", "norelatime", "nostrictatime"], cleared: MS.noatime | MS.relatime | MS.strictatime),
        .init(options: ["silent", "iversion", "lazytime"], flags: MS.silent | MS.iversion | MS.lazytime),
        // Later options win: set then cleared, cleared then set.
        .init(options: ["ro", "rw"], cleared: MS.rdonly),
        .init(options: ["rw", "ro"], flags: MS.rdonly),
        .init(options: ["nosuid", "suid", "nosuid"], flags: MS.nosuid),
        .init(options: ["noexec", "ro", "exec"], flags: MS.rdonly, cleared: MS.noexec),
        .init(options: ["bind"], bind: true),
        .init(options: ["rbind"], bind: true, recursive: true),
        .init(options: ["rbind", "ro"], flags: MS.rdonly, bind: true, recursive: true),
        .init(options: ["private"], propagation: [MS.private]),
        .init(options: ["rprivate"], propagation: [MS.private | MS.rec]),
        .init(options: ["slave"], propagation: [MS.slave]),
        .init(options: ["rslave"], propagation: [MS.slave | MS.rec]),
        .init(options: ["shared"], propagation: [MS.shared]),
        .init(options: ["rshared"], propagation: [MS.shared | MS.rec]),
        .init(options: ["unbindable", "runbindable"], propagation: [MS.unbindable, MS.unbindable | MS.rec]),
        .init(options: ["rslave", "rprivate"], propagation: [MS.slave | MS.rec, MS.private | MS.rec]),
        .init(options: ["mode=755"], data: "mode=755"),
        .init(options: ["mode=755", "size=65536k"], data: "mode=755,size=65536k"),
        // runc's default /dev, /dev/pts, /dev/shm mounts.
        .init(options: ["nosuid", "strictatime", "mode=755", "size=65536k"], flags: MS.nosuid | MS.strictatime, data: "mode=755,size=65536k"),
        .init(options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
              flags: MS.nosuid | MS.noexec, data: "newinstance,ptmxmode=0666,mode=0620,gid=5"),
        .init(options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
              flags: MS.nosuid | MS.noexec | MS.nodev, data: "mode=1777,size=65536k"),
        .init(options: ["lowerdir=/a:/b", "upperdir=/u", "workdir=/w", "ro"], flags: MS.rdonly, data: "lowerdir=/a:/b,upperdir=/u,workdir=/w"),
        // Options that are not for mount(2) at all.
        .init(options: ["defaults"]),
        .init(options: ["tmpcopyup", "idmap", "ridmap", "z", "Z"]),
    ]

    @Test("flags, cleared flags, propagation, data and bind", arguments: cases)
    func parse(testCase: MountOptionsCase) {
        let options = MountOptions(testCase.options)
        #expect(options.flags == testCase.flags)
        #expect(options.cleared == testCase.cleared)
        #expect(options.flags & options.cleared == 0, "a flag is never both set and cleared")
        #expect(options.propagation == testCase.propagation)
        #expect(options.dataString == testCase.data)
        #expect(options.isBind == testCase.bind)
        #expect(options.isRecursive == testCase.recursive)
    }

    @Test("a bind mount remounts the flags the kernel ignores on MS_BIND, and only those", arguments: [
        (["rbind", "ro", "nosuid", "nodev", "noexec"], MS.rdonly | MS.nosuid | MS.nodev | MS.noexec),
        (["bind", "noatime", "nodiratime", "relatime", "strictatime"], MS.noatime | MS.nodiratime | MS.relatime | MS.strictatime),
        (["bind", "sync", "dirsync", "remount", "silent", "lazytime"], 0),
        (["bind"], 0),
        (["bind", "ro", "rw"], 0),
    ] as [([String], UInt)])
    func bindRemountFlags(options: [String], expected: UInt) {
        #expect(MountOptions(options).bindRemountFlags == expected)
    }

    @Test("the options `features` lists are sorted, unique, and include the common ones")
    func known() {
        let known = MountOptions.known
        #expect(known == known.sorted())
        #expect(Set(known).count == known.count)
        for option in ["bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "rprivate", "rslave", "shared", "tmpcopyup"] {
            #expect(known.contains(option), "\(option)")
        }
        #expect(RuntimeInfo.mountOptions == known)
        #expect(!known.contains("mode=755"))
    }
}
