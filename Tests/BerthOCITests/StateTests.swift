import Foundation
import Testing
import BerthOCI

@Suite("State as `berth state` prints it")
struct StateTests {
    func keys(_ state: State) throws -> [String: Any] {
        let data = try JSONEncoder().encode(state)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("the required fields carry the runtime-spec names and nothing else is emitted when unset")
    func requiredFields() throws {
        let object = try keys(State(id: "web-1", status: .running, pid: 4242, bundle: "/srv/bundle"))
        #expect(Set(object.keys) == ["ociVersion", "id", "status", "pid", "bundle"])
        #expect(object["ociVersion"] as? String == "1.2.0")
        #expect(object["id"] as? String == "web-1")
        #expect(object["status"] as? String == "running")
        #expect(object["pid"] as? Int == 4242)
        #expect(object["bundle"] as? String == "/srv/bundle")
    }

    @Test("runc's extra fields are emitted when set")
    func extraFields() throws {
        let state = State(id: "c", status: .created, pid: 1, bundle: "/b", rootfs: "/b/rootfs",
                          created: "2024-01-01T00:00:00Z", owner: "", annotations: ["k": "v"])
        let object = try keys(state)
        #expect(Set(object.keys) == ["ociVersion", "id", "status", "pid", "bundle", "rootfs", "created", "owner", "annotations"])
        #expect(object["rootfs"] as? String == "/b/rootfs")
        #expect((object["annotations"] as? [String: String]) == ["k": "v"])
    }

    @Test("status strings are the spec's", arguments: [
        (State.Status.creating, "creating"), (.created, "created"), (.running, "running"),
        (.stopped, "stopped"), (.paused, "paused"),
    ])
    func statuses(status: State.Status, text: String) throws {
        #expect(try keys(State(id: "x", status: status, pid: 0, bundle: "/")) ["status"] as? String == text)
    }

    @Test("decodes what runc prints, and round-trips")
    func decodesRunc() throws {
        let json = #"{"ociVersion":"1.0.2","id":"abc","pid":77,"status":"stopped","bundle":"/run/b","rootfs":"/run/b/rootfs","created":"2024-05-01T10:00:00.123Z","owner":"root"}"#
        let state = try JSONDecoder().decode(State.self, from: Data(json.utf8))
        #expect(state == State(ociVersion: "1.0.2", id: "abc", status: .stopped, pid: 77, bundle: "/run/b",
                               rootfs: "/run/b/rootfs", created: "2024-05-01T10:00:00.123Z", owner: "root"))
        #expect(try JSONDecoder().decode(State.self, from: JSONEncoder().encode(state)) == state)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(State.self, from: Data(#"{"ociVersion":"1","id":"a","pid":1,"status":"exploded","bundle":"/"}"#.utf8))
        }
    }
}
