import BerthEngine
import BerthOCI
import Testing

@Suite struct CreateOptionsTests {
    @Test func restartPolicies() throws {
        #expect(try RestartPolicy.parse("no") == RestartPolicy(name: "no"))
        #expect(try RestartPolicy.parse("on-failure:3") == RestartPolicy(name: "on-failure", maximumRetryCount: 3))
        #expect(throws: EngineError.self) { try RestartPolicy.parse("sometimes") }
        #expect(throws: EngineError.self) { try RestartPolicy.parse("always:2") }
        let onFailure = RestartPolicy(name: "on-failure", maximumRetryCount: 2)
        #expect(onFailure.restarts(exitCode: 1, count: 1))
        #expect(!onFailure.restarts(exitCode: 1, count: 2))
        #expect(!onFailure.restarts(exitCode: 0, count: 0))
        #expect(RestartPolicy(name: "always").restarts(exitCode: 0, count: 100))
    }

    @Test func volumeFlags() throws {
        let bind = try MountSpecs.volume("/host/dir:/data:ro,Z")
        #expect(bind.type == "bind" && bind.source == "/host/dir" && bind.destination == "/data" && bind.readOnly)
        let named = try MountSpecs.volume("cache:/var/cache/")
        #expect(named.type == "volume" && named.source == "cache" && named.destination == "/var/cache" && !named.anonymous)
        let anonymous = try MountSpecs.volume("/scratch")
        #expect(anonymous.type == "volume" && anonymous.anonymous)
        #expect(throws: EngineError.self) { try MountSpecs.volume("x:relative") }
        #expect(throws: EngineError.self) { try MountSpecs.volume("/a:/b:bogus") }
        #expect(throws: EngineError.self) { try MountSpecs.volume("/a:/b:ro,rw") }
        #expect(throws: EngineError.self) { try MountSpecs.volume("bad name:/b") }
    }

    @Test func mountFlags() throws {
        let tmpfs = try MountSpecs.mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=700")
        #expect(tmpfs.type == "tmpfs" && tmpfs.options == ["size=1048576", "mode=700"])
        let bind = try MountSpecs.mount("type=bind,source=/etc,target=/e,readonly")
        #expect(bind.type == "bind" && bind.readOnly)
        let volume = try MountSpecs.mount("type=volume,target=/v")
        #expect(volume.anonymous)
        #expect(throws: EngineError.self) { try MountSpecs.mount("type=bind,target=/e") }
        #expect(throws: EngineError.self) { try MountSpecs.mount("type=nfs,target=/e") }
        #expect(throws: EngineError.self) { try MountSpecs.mount("type=tmpfs,target=/t,tmpfs-size=huge") }
    }

    @Test func userLookup() throws {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"
        let group = "root:x:0:\nuser:x:1000:\nwheel:x:10:user,other\n"
        let user = try SpecBuilder.resolveUser("user", passwd: passwd, group: group)
        #expect(user.uid == 1000 && user.gid == 1000 && user.additionalGids == [10])
        let numeric = try SpecBuilder.resolveUser("4242", passwd: passwd, group: group)
        #expect(numeric.uid == 4242 && numeric.gid == 0)
        let withGroup = try SpecBuilder.resolveUser("user:wheel", passwd: passwd, group: group)
        #expect(withGroup.gid == 10)
        #expect(throws: EngineError.self) { try SpecBuilder.resolveUser("ghost", passwd: passwd, group: group) }
        #expect(throws: EngineError.self) { try SpecBuilder.resolveUser("user:nogroup", passwd: passwd, group: group) }
    }

    @Test func names() throws {
        try ContainerStore.validate(name: "web-1.a_b")
        #expect(throws: EngineError.self) { try ContainerStore.validate(name: "-web") }
        #expect(throws: EngineError.self) { try ContainerStore.validate(name: "a/b") }
        let name = ContainerStore.generateName(taken: [])
        #expect(name.contains("_"))
        #expect(ContainerStore.newID().utf8.count == 64)
    }

    @Test func statusText() {
        var container = Container(id: String(repeating: "a", count: 64), name: "c", created: Timestamps.now(), image: "busybox",
                                  imageID: "sha256:x", config: ContainerConfig(), state: ContainerState())
        #expect(container.statusText() == "Created")
        container.state.status = "exited"
        container.state.exitCode = 3
        container.state.finishedAt = Timestamps.format(seconds: 1000, nanoseconds: 0)
        #expect(container.statusText(now: 1120) == "Exited (3) 2 minutes ago")
        container.state.exitCode = nil
        #expect(container.statusText(now: 1001).hasPrefix("Exited (unknown)"))
        #expect(Timestamps.seconds(of: Timestamps.format(seconds: 1_700_000_000, nanoseconds: 5)) == 1_700_000_000)
    }
}
