#if canImport(Glibc)
import Glibc
#endif
import BerthOCI
import BerthOS
import CBerth

/// One entry of linux.resources.devices, as `DeviceFilter.rules` returns it:
/// `type` is "a", "b" or "c" in ASCII, a nil number matches any (the
/// Spec's -1 or no number), `access` is a non-empty subset of "rwm" in
/// that order.
struct DeviceRule: Equatable, Sendable {
    var allow: Bool
    var type: UInt8
    var major: Int64?
    var minor: Int64?
    var access: String
}

/// The cgroup v2 device controller: linux.resources.devices compiled into a
/// BPF_PROG_TYPE_CGROUP_DEVICE program and attached to the container's
/// cgroup, since cgroup v2 has no devices.allow/devices.deny files.
///
/// What a list means is runc's (opencontainers/cgroups, vendored by runc:
/// devices/devices_emulator.go and devices/devicefilter.go; the defaults in
/// runc's libcontainer/specconv/spec_linux.go): the rules are written, in
/// order, to a cgroup v1 devices controller that starts out denying
/// everything, and the program answers as that controller would.
/// - The controller holds a default (allow or deny) and exceptions: a
///   pattern (type, major or any, minor or any) with the access letters it
///   covers. It starts as "deny, no exceptions".
/// - A rule of type "a" sets the default to its `allow` and drops every
///   exception; its numbers and access are ignored. A leading
///   {"allow": false} is how podman, Docker and containerd begin.
/// - Any other rule whose `allow` differs from the default adds its letters
///   to the exception with exactly its pattern; one whose `allow` equals the
///   default takes them away from exactly that pattern, and from no other.
///   So this is not "the last matching rule wins": after "allow c 1:3" a
///   "deny c *:*" in deny-by-default mode leaves c 1:3 allowed, as on v1.
/// - Taking letters from a pattern while a wider one that covers it (same
///   type with *:minor, major:* or *:*) holds any of them is an error: v1
///   silently keeps the wider rule, and runc refuses rather than mislead.
/// - A request is a device and the letters it asks for together (read and
///   write for an O_RDWR open; none for access(F_OK)). When the default is
///   deny it is allowed if one exception matches the device and covers all
///   of its letters; when the default is allow it is denied if one
///   exception matches the device and covers any of its letters.
///
/// Where berth differs from runc, on purpose:
/// - That last "any": runc's program denies only when one exception covers
///   all the letters, so after "allow a" and "deny c 1:3 w" an O_RDWR open
///   of c 1:3 passes under runc. berth denies it, as cgroup v1 does
///   (security/device_cgroup.c, match_exception_partial).
/// - An empty list is no policy at all (no program): runc appends its own
///   allowed devices to every list, so an empty list there still means
///   "deny all but /dev/null, /dev/zero, ... and mknod of anything".
/// - A missing or empty access means "rwm" (runc refuses it); letters other
///   than r, w and m are refused (runc ignores them); numbers below -1 or
///   above 2^32-1 are refused (runc reads a negative number as "any").
enum DeviceFilter {
    // struct bpf_cgroup_dev_ctx's encodings (<linux/bpf.h>): the type in the
    // low 16 bits of access_type, the access letters in the high 16 bits.
    static let blockDevice: UInt8 = 1, characterDevice: UInt8 = 2
    static let accessMknod: UInt8 = 1, accessRead: UInt8 = 2, accessWrite: UInt8 = 4
    static let accessAll: UInt8 = 7

    /// Parses and checks linux.resources.devices; null or absent is no rules.
    static func rules(_ devices: JSONValue?) throws(RuntimeError) -> [DeviceRule] {
        let entries: [JSONValue]
        switch devices {
        case nil, .null?: return []
        case .array(let array)?: entries = array
        default: throw RuntimeError(.invalidArgument, "linux.resources.devices: not an array")
        }
        var rules: [DeviceRule] = []
        var controller = Controller()
        for (index, entry) in entries.enumerated() {
            let rule = try parse(entry, at: index)
            if let conflict = controller.apply(rule) {
                throw RuntimeError(.invalidArgument, "linux.resources.devices[\(index)]: \(conflict)")
            }
            rules.append(rule)
        }
        return rules
    }

    /// True when the rules allow everything (no rules, or nothing but
    /// allow-all once applied): then no program is needed.
    static func allowsEverything(_ rules: [DeviceRule]) -> Bool {
        if rules.isEmpty { return true }
        let controller = Controller(applying: rules)
        return controller.allowByDefault && controller.exceptions.isEmpty
    }

    /// The program as raw struct bpf_insn words, each laid out in memory as
    /// the kernel reads it. Rules are expected from `rules(_:)`; anything it
    /// would refuse compiles as cgroup v1 would take it (a hole in a wider
    /// rule is ignored), or as matching no device (a type other than a, b
    /// or c, a number below -1 or above 2^32-1), or without the letters
    /// other than r, w and m.
    static func program(_ rules: [DeviceRule]) -> [UInt64] {
        if rules.isEmpty { return [BPFInstruction.mov32(0, 1).encoded, BPFInstruction.exit.encoded] }
        let controller = Controller(applying: rules)
        var instructions: [BPFInstruction] = []
        if !controller.exceptions.isEmpty {
            instructions += [
                .loadWord(2, context: 1, offset: 0), .and32(2, 0xffff), // r2 = type
                .loadWord(3, context: 1, offset: 0), .rsh32(3, 16), // r3 = access letters
                .loadWord(4, context: 1, offset: 4), // r4 = major
                .loadWord(5, context: 1, offset: 8), // r5 = minor
            ]
        }
        // Every exception has the same verdict: the opposite of the default.
        for (pattern, access) in controller.exceptions.sorted(by: { $0.key < $1.key }) {
            instructions += block(pattern, access, allowByDefault: controller.allowByDefault)
        }
        instructions += [.mov32(0, controller.allowByDefault ? 1 : 0), .exit]
        return instructions.map(\.encoded)
    }

    /// Loads the program and attaches it to the cgroup open at `cgroupFD`
    /// (an O_DIRECTORY fd of a cgroup v2 directory). The program fd is
    /// closed afterwards: the attachment keeps the program alive. Callers
    /// skip this when `allowsEverything` (it would attach an allow-all).
    static func attach(_ rules: [DeviceRule], cgroupFD: Int32) throws(RuntimeError) {
        let program = try cachedLoad(program(rules))
        defer { program.close() }
        guard berth_bpf_attach_cgroup_device(program.rawValue, cgroupFD) == 0 else {
            throw RuntimeError.system("linux.resources.devices: attach the device program to the cgroup (BPF_PROG_ATTACH)", Errno.current)
        }
    }

    /// Where loaded programs are pinned, named by a hash of their
    /// instructions, so the next container with the same rules reuses the
    /// program: BPF_PROG_LOAD cost 0.5-1 ms a run here (the JIT's memory
    /// work, not the verifier). Root only, mode 0700; a few KiB of kernel
    /// memory per distinct rule list, until reboot or `rm -r` of the directory.
    static let pinDirectory = "/sys/fs/bpf/berth"

    /// The pinned program for `instructions`, or a fresh load that is then
    /// pinned (best effort: without a bpffs, or rootless, it just loads).
    static func cachedLoad(_ instructions: [UInt64]) throws(RuntimeError) -> FileDescriptor {
        guard geteuid() == 0, berth_is_bpffs("/sys/fs/bpf") == 1 else { return try load(instructions) }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 // FNV-1a over the instruction words
        for word in instructions {
            for shift in stride(from: 0, to: 64, by: 8) { hash = (hash ^ ((word >> UInt64(shift)) & 0xff)) &* 0x0000_0100_0000_01b3 }
        }
        let hex = String(hash, radix: 16)
        let path = pinDirectory + "/devices-" + String(repeating: "0", count: 16 - hex.count) + hex + "-\(instructions.count)"
        if let st = try? Files.lstat(pinDirectory), (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == 0, st.st_mode & 0o077 == 0 {
            let fd = berth_bpf_obj_get(path)
            if fd >= 0 { return FileDescriptor(rawValue: fd) }
        }
        let program = try load(instructions)
        if mkdir(pinDirectory, 0o700) == 0 || Errno.current == .exists {
            _ = berth_bpf_obj_pin(program.rawValue, path)
        }
        return program
    }

    /// BPF_PROG_LOAD of `instructions` as a cgroup device program; on failure
    /// the error carries the verifier's reason when it gave one.
    static func load(_ instructions: [UInt64]) throws(RuntimeError) -> FileDescriptor {
        var log = [CChar](repeating: 0, count: 64 * 1024)
        let fd = instructions.withUnsafeBufferPointer { program in
            log.withUnsafeMutableBufferPointer { buffer in
                berth_bpf_load_device_program(program.baseAddress, UInt32(program.count), buffer.baseAddress, UInt32(buffer.count))
            }
        }
        guard fd >= 0 else {
            let failure = RuntimeError.system("linux.resources.devices: load the device program (BPF_PROG_LOAD)", Errno.current)
            guard let reason = verifierReason(log) else { throw failure }
            throw RuntimeError(failure.code, "\(failure.message) (verifier: \(reason))")
        }
        return FileDescriptor(rawValue: fd)
    }

    /// The line of a verifier log that says what is wrong. The log traces
    /// every instruction it checked first ("0: (61) r2 = *(u32 *)(r1 +0)",
    /// register states), then the complaint, then statistics ("processed 3
    /// insns ..."), so it is the last line that is none of those.
    static func verifierReason(_ log: [CChar]) -> String? {
        let bytes = log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").map { String($0).trimmed }
        return lines.last { line in
            !line.isEmpty && !line.hasPrefix("processed ") && !line.hasPrefix("verification time")
                && !line.hasPrefix("stack depth") && !isTraceLine(line)
        }
    }

    /// "12: (b4) w0 = 1", "12: R0_w=1 R10=fp0", "; source line": the trace.
    static func isTraceLine(_ line: String) -> Bool {
        if line.hasPrefix(";") { return true }
        let digits = line.prefix { $0.isASCII && $0.isNumber }
        return !digits.isEmpty && line.dropFirst(digits.count).hasPrefix(":")
    }

    // MARK: Parsing

    static func parse(_ entry: JSONValue, at index: Int) throws(RuntimeError) -> DeviceRule {
        let invalid = { (problem: String) in RuntimeError(.invalidArgument, "linux.resources.devices[\(index)]: \(problem)") }
        guard case .object(let fields) = entry else { throw invalid("not an object") }
        let allow: Bool
        switch fields["allow"] {
        case nil, .null?: allow = false // Go's zero value, as runc reads it
        case .bool(let value)?: allow = value
        default: throw invalid("allow is not true or false")
        }
        let type: UInt8
        switch fields["type"] {
        case nil, .null?, .string("")?, .string("a")?: type = UInt8(ascii: "a")
        case .string("b")?: type = UInt8(ascii: "b")
        case .string("c")?: type = UInt8(ascii: "c")
        case .string(let other)?: throw invalid("unknown type \"\(other)\" (a, b or c)")
        default: throw invalid("type is not a string")
        }
        let major = try deviceNumber(fields["major"], "major", invalid)
        let minor = try deviceNumber(fields["minor"], "minor", invalid)
        var access = "rwm"
        switch fields["access"] {
        case nil, .null?: break
        case .string(let text)?:
            guard text.utf8.allSatisfy({ letterBit($0) != 0 }) else {
                throw invalid("access \"\(text)\" has a letter other than r, w and m")
            }
            access = accessLetters(accessMask(text))
        default: throw invalid("access is not a string")
        }
        return DeviceRule(allow: allow, type: type, major: major, minor: minor, access: access)
    }

    /// A major or minor number: nil for any (absent, null or -1).
    static func deviceNumber(_ value: JSONValue?, _ name: String, _ invalid: (String) -> RuntimeError) throws(RuntimeError) -> Int64? {
        let number: Int64
        switch value {
        case nil, .null?: return nil
        case .integer(let integer)?: number = integer
        case .number(let double)? where double.rounded() == double && abs(double) < 1e15: number = Int64(double)
        case .unsigned(let unsigned)?: throw invalid("\(name) \(unsigned) is not a device number (0 to 4294967295, or -1 for any)")
        default: throw invalid("\(name) is not an integer")
        }
        if number == -1 { return nil }
        guard number >= 0 && number <= Int64(UInt32.max) else {
            throw invalid("\(name) \(number) is not a device number (0 to 4294967295, or -1 for any)")
        }
        return number
    }

    static func letterBit(_ letter: UInt8) -> UInt8 {
        switch letter {
        case UInt8(ascii: "r"): accessRead
        case UInt8(ascii: "w"): accessWrite
        case UInt8(ascii: "m"): accessMknod
        default: 0
        }
    }

    /// The access bits of a letter string; empty means all of them.
    static func accessMask(_ access: String) -> UInt8 {
        access.isEmpty ? accessAll : access.utf8.reduce(0) { $0 | letterBit($1) }
    }

    static func accessLetters(_ mask: UInt8) -> String {
        (mask & accessRead != 0 ? "r" : "") + (mask & accessWrite != 0 ? "w" : "") + (mask & accessMknod != 0 ? "m" : "")
    }

    // MARK: The cgroup v1 controller

    /// The devices controller of cgroup v1 as the rules leave it (runc's
    /// emulator): a default and exceptions keyed by exact pattern.
    struct Controller {
        /// Type as in bpf_cgroup_dev_ctx; -1 for any major or minor (other
        /// numbers outside 0...2^32-1 match no device).
        struct Pattern: Hashable, Comparable, CustomStringConvertible {
            var type: UInt8
            var major: Int64
            var minor: Int64

            /// Major, then minor, then type, wildcards first: a stable program.
            static func < (a: Pattern, b: Pattern) -> Bool {
                (a.major, a.minor, a.type) < (b.major, b.minor, b.type)
            }

            var description: String {
                let letter = type == DeviceFilter.blockDevice ? "b" : "c"
                return "\(letter) \(major == -1 ? "*" : String(major)):\(minor == -1 ? "*" : String(minor))"
            }
        }

        var allowByDefault = false
        var exceptions: [Pattern: UInt8] = [:]

        init() {}

        /// The state after every rule, conflicts applied as v1 would.
        init(applying rules: [DeviceRule]) {
            for rule in rules { _ = apply(rule) }
        }

        /// Writes `rule` as to devices.allow or devices.deny. Returns why
        /// runc would refuse it (a hole in a wider rule); it is then applied
        /// as v1 does, to its exact pattern only.
        mutating func apply(_ rule: DeviceRule) -> String? {
            let type: UInt8
            switch rule.type {
            case UInt8(ascii: "a"):
                allowByDefault = rule.allow
                exceptions = [:]
                return nil
            case UInt8(ascii: "b"): type = DeviceFilter.blockDevice
            case UInt8(ascii: "c"): type = DeviceFilter.characterDevice
            default: return nil
            }
            let pattern = Pattern(type: type, major: rule.major ?? -1, minor: rule.minor ?? -1)
            let access = DeviceFilter.accessMask(rule.access)
            if rule.allow != allowByDefault {
                if access != 0 { exceptions[pattern, default: 0] |= access }
                return nil
            }
            var conflict: String?
            let wider = [Pattern(type: type, major: -1, minor: pattern.minor), Pattern(type: type, major: pattern.major, minor: -1),
                         Pattern(type: type, major: -1, minor: -1)]
            for other in wider where other != pattern {
                if let held = exceptions[other], held & access != 0 {
                    let verb = rule.allow ? "allow" : "deny", otherVerb = rule.allow ? "denies" : "allows"
                    conflict = "cannot \(verb) \(pattern) \(DeviceFilter.accessLetters(access)) inside an earlier rule that \(otherVerb)"
                        + " \(other) \(DeviceFilter.accessLetters(held)) (the devices controller cannot punch a hole in a wildcard rule)"
                    break
                }
            }
            let left = (exceptions[pattern] ?? 0) & ~access
            exceptions[pattern] = left == 0 ? nil : left
            return conflict
        }
    }

    // MARK: Code generation

    /// One exception: falls through to the next block unless the request
    /// matches it, and returns the exception's verdict when it does. The
    /// context is loaded in r2 (type), r3 (access), r4 (major), r5 (minor);
    /// r1 is scratch.
    static func block(_ pattern: Controller.Pattern, _ access: UInt8, allowByDefault: Bool) -> [BPFInstruction] {
        var block: [BPFInstruction] = [.jumpIfNotEqual(2, Int32(pattern.type))]
        if allowByDefault {
            // A deny exception: matches when any asked-for letter is in it.
            block += [.mov32Register(1, 3), .and32(1, Int32(access)), .jumpIfEqual(1, 0)]
        } else if access != accessAll {
            // An allow exception: matches when it covers every asked-for letter.
            block += [.mov32Register(1, 3), .and32(1, Int32(access)), .jumpIfNotEqualRegister(1, 3)]
        }
        for (register, number) in [(UInt8(4), pattern.major), (UInt8(5), pattern.minor)] where number != -1 {
            if number < 0 || number > Int64(UInt32.max) { return [] } // matches no device
            if number <= Int64(Int32.max) {
                block.append(.jumpIfNotEqual(register, Int32(number)))
            } else {
                // An immediate is sign-extended to 64 bits, the register is
                // not: compare in 32 bits, as w1 ^ number == 0.
                block += [.mov32Register(1, register), .xor32(1, Int32(truncatingIfNeeded: number)), .jumpIfNotEqual(1, 0)]
            }
        }
        block += [.mov32(0, allowByDefault ? 0 : 1), .exit]
        // Every test jumps past the block: to the next one or the default.
        for index in block.indices where block[index].isConditionalJump {
            block[index].offset = Int16(block.count - index - 1)
        }
        return block
    }
}

/// The few eBPF instructions the device program uses (struct bpf_insn).
struct BPFInstruction: Equatable, Sendable {
    var code: UInt8
    var destination: UInt8 = 0
    var source: UInt8 = 0
    var offset: Int16 = 0
    var immediate: Int32 = 0

    // Opcodes: class | operation | source (<linux/bpf_common.h>, <linux/bpf.h>).
    static let loadWordCode: UInt8 = 0x61 // BPF_LDX | BPF_MEM | BPF_W
    static let and32Code: UInt8 = 0x54 // BPF_ALU | BPF_AND | BPF_K
    static let rsh32Code: UInt8 = 0x74 // BPF_ALU | BPF_RSH | BPF_K
    static let xor32Code: UInt8 = 0xa4 // BPF_ALU | BPF_XOR | BPF_K
    static let mov32Code: UInt8 = 0xb4 // BPF_ALU | BPF_MOV | BPF_K
    static let mov32RegisterCode: UInt8 = 0xbc // BPF_ALU | BPF_MOV | BPF_X
    static let jumpIfEqualCode: UInt8 = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
    static let jumpIfNotEqualCode: UInt8 = 0x55 // BPF_JMP | BPF_JNE | BPF_K
    static let jumpIfNotEqualRegisterCode: UInt8 = 0x5d // BPF_JMP | BPF_JNE | BPF_X
    static let exitCode: UInt8 = 0x95 // BPF_JMP | BPF_EXIT

    /// dst = *(u32 *)(context + offset)
    static func loadWord(_ destination: UInt8, context: UInt8, offset: Int16) -> BPFInstruction {
        BPFInstruction(code: loadWordCode, destination: destination, source: context, offset: offset)
    }
    static func and32(_ destination: UInt8, _ value: Int32) -> BPFInstruction {
        BPFInstruction(code: and32Code, destination: destination, immediate: value)
    }
    static func rsh32(_ destination: UInt8, _ value: Int32) -> BPFInstruction {
        BPFInstruction(code: rsh32Code, destination: destination, immediate: value)
    }
    static func xor32(_ destination: UInt8, _ value: Int32) -> BPFInstruction {
        BPFInstruction(code: xor32Code, destination: destination, immediate: value)
    }
    static func mov32(_ destination: UInt8, _ value: Int32) -> BPFInstruction {
        BPFInstruction(code: mov32Code, destination: destination, immediate: value)
    }
    static func mov32Register(_ destination: UInt8, _ source: UInt8) -> BPFInstruction {
        BPFInstruction(code: mov32RegisterCode, destination: destination, source: source)
    }
    /// The jumps' offsets are set once their block is complete.
    static func jumpIfEqual(_ register: UInt8, _ value: Int32) -> BPFInstruction {
        BPFInstruction(code: jumpIfEqualCode, destination: register, immediate: value)
    }
    static func jumpIfNotEqual(_ register: UInt8, _ value: Int32) -> BPFInstruction {
        BPFInstruction(code: jumpIfNotEqualCode, destination: register, immediate: value)
    }
    static func jumpIfNotEqualRegister(_ register: UInt8, _ other: UInt8) -> BPFInstruction {
        BPFInstruction(code: jumpIfNotEqualRegisterCode, destination: register, source: other)
    }
    static let exit = BPFInstruction(code: exitCode)

    var isConditionalJump: Bool {
        [Self.jumpIfEqualCode, Self.jumpIfNotEqualCode, Self.jumpIfNotEqualRegisterCode].contains(code)
    }

    /// The 8 bytes of struct bpf_insn as one word whose in-memory layout is
    /// the struct's: code, then dst_reg and src_reg sharing a byte (bit
    /// fields, allocated from the low end on little-endian machines), off, imm.
    var encoded: UInt64 {
        #if _endian(little)
        let registers = UInt64(destination & 0xf) | UInt64(source & 0xf) << 4
        return UInt64(code) | registers << 8 | UInt64(UInt16(bitPattern: offset)) << 16
            | UInt64(UInt32(bitPattern: immediate)) << 32
        #else
        let registers = UInt64(destination & 0xf) << 4 | UInt64(source & 0xf)
        return UInt64(code) << 56 | registers << 48 | UInt64(UInt16(bitPattern: offset)) << 32
            | UInt64(UInt32(bitPattern: immediate))
        #endif
    }
}
