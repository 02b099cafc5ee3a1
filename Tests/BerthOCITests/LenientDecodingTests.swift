import Foundation
import Testing
import BerthOCI

@Suite("Lenient decoding fills in the spec's defaults")
struct LenientDecodingTests {
    @Test("a minimal config gets ociVersion, user 0:0 and cwd /")
    func minimal() throws {
        let spec = try decodeSpec(#"{"process": {"args": ["sh"]}, "root": {"path": "rootfs"}}"#)
        #expect(spec.ociVersion == Spec.version)
        #expect(Spec.version == "1.2.0")
        let process = try #require(spec.process)
        #expect(process.user == User(uid: 0, gid: 0))
        #expect(process.cwd == "/")
        #expect(process.terminal == nil)
        #expect(spec.root?.readonly == nil)
        #expect(spec.linux == nil && spec.mounts == nil && spec.hooks == nil && spec.hostname == nil)
    }

    @Test("an empty object is a Spec with nothing set")
    func empty() throws {
        let spec = try decodeSpec("{}")
        #expect(spec == Spec())
        #expect(spec.process == nil && spec.root == nil)
    }

    @Test("a partial user defaults the missing ids to 0", arguments: [
        (#"{"uid": 5}"#, 5, 0), (#"{"gid": 7}"#, 0, 7), ("{}", 0, 0), (#"{"uid": 1, "gid": 2}"#, 1, 2),
    ] as [(String, UInt32, UInt32)])
    func partialUser(user: String, uid: UInt32, gid: UInt32) throws {
        let spec = try decodeSpec(#"{"process": {"user": \#(user), "args": ["sh"]}}"#)
        #expect(spec.process?.user.uid == uid)
        #expect(spec.process?.user.gid == gid)
    }

    @Test("unknown keys are ignored")
    func unknownKeys() throws {
        let spec = try decodeSpec(#"{"vm": {"hypervisor": {}}, "process": {"args": ["sh"], "scheduler": {"policy": "SCHED_OTHER"}}, "linux": {"netDevices": {}}}"#)
        #expect(spec.process?.args == ["sh"])
        #expect(spec.linux != nil)
    }

    @Test("required fields and wrong types are still errors", arguments: [
        #"{"root": {}}"#,                                        // root.path is required
        #"{"root": {"path": 5}}"#,
        #"{"mounts": [{"type": "proc"}]}"#,                      // destination is required
        #"{"hooks": {"prestart": [{"args": ["x"]}]}}"#,          // hook path is required
        #"{"linux": {"uidMappings": [{"containerID": 0, "hostID": 0}]}}"#, // size is required
        #"{"linux": {"namespaces": [{"path": "/proc/1/ns/net"}]}}"#,       // type is required
        #"{"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1}]}}"#,
        #"{"process": {"args": "sh"}}"#,
        #"{"process": {"user": {"uid": -1}}}"#,
        #"{"process": {"cwd": 1}}"#,
        #"{"ociVersion": 1}"#,
        #"{"annotations": {"a": 1}}"#,
        #"[]"#,
        #"not json"#,
    ])
    func rejects(json: String) {
        #expect(throws: DecodingError.self) { try decodeSpec(json) }
    }
}
