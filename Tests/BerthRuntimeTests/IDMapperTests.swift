import Testing
import BerthOCI
@testable import BerthRuntime

@Suite("IDMapper.text")
struct IDMapperTests {
    @Test("one line per mapping, as /proc/PID/uid_map wants it", arguments: [
        ([], ""),
        ([LinuxIDMapping(containerID: 0, hostID: 1000, size: 1)], "0 1000 1\n"),
        ([LinuxIDMapping(containerID: 0, hostID: 1000, size: 1), LinuxIDMapping(containerID: 1, hostID: 100000, size: 65536)],
         "0 1000 1\n1 100000 65536\n"),
        ([LinuxIDMapping(containerID: 0, hostID: 0, size: 4294967295)], "0 0 4294967295\n"),
    ] as [([LinuxIDMapping], String)])
    func text(mappings: [LinuxIDMapping], expected: String) {
        #expect(IDMapper.text(mappings) == expected)
    }
}
