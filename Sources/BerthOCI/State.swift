/// The OCI state of a container, as `state` prints it. runc adds `rootfs`,
/// `created` and `owner`; podman and containerd read those, so berth does too.
public struct State: Codable, Equatable, Sendable {
    public var ociVersion: String
    public var id: String
    public var status: Status
    public var pid: Int32
    public var bundle: String
    public var rootfs: String?
    public var created: String?
    public var owner: String?
    public var annotations: [String: String]?
    /// berth's addition: true once the kernel's OOM killer has killed a
    /// process of the container (memory.events oom_kill); absent otherwise.
    public var oomKilled: Bool?

    public enum Status: String, Codable, Sendable {
        case creating, created, running, stopped, paused
    }

    public init(ociVersion: String = Spec.version, id: String, status: Status, pid: Int32, bundle: String,
                rootfs: String? = nil, created: String? = nil, owner: String? = nil, annotations: [String: String]? = nil) {
        self.ociVersion = ociVersion
        self.id = id
        self.status = status
        self.pid = pid
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.owner = owner
        self.annotations = annotations
    }
}
