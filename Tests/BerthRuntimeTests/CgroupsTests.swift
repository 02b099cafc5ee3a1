import Foundation
import Testing
import BerthOCI
@testable import BerthRuntime

@Suite("Cgroups.onlyDefaults")
struct CgroupsTests {
    static let podmanDevices = #"{"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}"#

    @Test("resources that ask for nothing enforceable are defaults", arguments: [
        podmanDevices,
        "{}",
        "null",
        #"{"devices": []}"#,
        #"{"pids": {"limit": 0}}"#,
        #"{"memory": {"limit": 0, "swap": 0}, "cpu": {"shares": 0, "cpus": ""}}"#,
        #"{"blockIO": {"weight": 0}, "hugepageLimits": [], "network": {}}"#,
        #"{"devices": [{"allow": true, "access": "rwm"}], "memory": {}}"#,
    ])
    func defaults(json: String) throws {
        let resources = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
        #expect(Cgroups.onlyDefaults(resources))
    }

    @Test("any real limit is not a default", arguments: [
        #"{"pids": {"limit": 100}}"#,
        #"{"devices": [{"allow": false, "access": "rwm"}], "pids": {"limit": 100}}"#,
        #"{"memory": {"limit": 536870912}}"#,
        #"{"cpu": {"cpus": "0-1"}}"#,
        #"{"cpu": {"quota": 50000, "period": 100000}}"#,
        #"{"blockIO": {"weight": 500}}"#,
        #"{"unified": {"memory.high": "1G"}}"#,
        #"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}"#,
    ])
    func limits(json: String) throws {
        let resources = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
        #expect(!Cgroups.onlyDefaults(resources))
    }

    @Test("a real limit is refused with the key that asked for it, never ignored", arguments: [
        ("pids", #"{"pids": {"limit": 100}}"#), ("memory", #"{"memory": {"limit": 1048576}}"#),
        ("cpu", #"{"devices": [], "cpu": {"shares": 512}}"#),
    ])
    func refused(key: String, json: String) throws {
        let resources = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
        do {
            try Cgroups.checkLimitsSupported(resources)
            Issue.record("linux.resources.\(key) was accepted")
        } catch {
            #expect(error.code == .unsupported)
            #expect(error.message.contains("linux.resources.\(key)"))
        }
    }

    @Test("device rules alone pass the check")
    func devicesPass() throws {
        let resources = try JSONDecoder().decode(JSONValue.self, from: Data(Self.podmanDevices.utf8))
        try Cgroups.checkLimitsSupported(resources)
    }
}
