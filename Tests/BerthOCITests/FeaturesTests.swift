import Foundation
import Testing
import BerthOCI

@Suite("Features document")
struct FeaturesTests {
    @Test("reports the spec range, hooks, namespaces and cgroup v2 under runtime-spec key names")
    func document() throws {
        let features = Features(mountOptions: ["bind", "ro"], capabilities: ["CAP_CHOWN"], version: "0.1.0")
        let data = try JSONEncoder().encode(features)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["ociVersionMin"] as? String == "1.0.0")
        #expect(object["ociVersionMax"] as? String == Spec.version)
        #expect(object["hooks"] as? [String] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"])
        #expect(object["mountOptions"] as? [String] == ["bind", "ro"])
        let linux = try #require(object["linux"] as? [String: Any])
        #expect(Set(linux["namespaces"] as? [String] ?? []) == ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"])
        #expect(linux["capabilities"] as? [String] == ["CAP_CHOWN"])
        let cgroup = try #require(linux["cgroup"] as? [String: Bool])
        #expect(cgroup["v2"] == true && cgroup["v1"] == false)
        #expect((linux["mountExtensions"] as? [String: Any])?["idmap"] != nil)
        #expect((object["annotations"] as? [String: String])?["org.opencontainers.runtime-spec.features.version"] == "0.1.0")
    }
}
