/// What `berth features` prints: the runtime-spec features document.
public struct Features: Codable, Sendable {
    public var ociVersionMin: String
    public var ociVersionMax: String
    public var hooks: [String]
    public var mountOptions: [String]
    public var linux: LinuxFeatures
    public var annotations: [String: String]

    public struct LinuxFeatures: Codable, Sendable {
        public var namespaces: [String]
        public var capabilities: [String]
        public var cgroup: Cgroup
        public var seccomp: Seccomp
        public var apparmor: Enabled
        public var selinux: Enabled
        public var intelRdt: Enabled
        public var mountExtensions: MountExtensions
    }

    public struct Cgroup: Codable, Sendable {
        public var v1: Bool
        public var v2: Bool
        public var systemd: Bool
        public var systemdUser: Bool
        public var rdma: Bool
    }

    public struct Seccomp: Codable, Sendable {
        public var enabled: Bool
        public var actions: [String]
        public var operators: [String]
        public var archs: [String]
    }

    public struct Enabled: Codable, Sendable {
        public var enabled: Bool
    }

    public struct MountExtensions: Codable, Sendable {
        public var idmap: Enabled
    }

    public init(mountOptions: [String], capabilities: [String], version: String) {
        ociVersionMin = "1.0.0"
        ociVersionMax = Spec.version
        hooks = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
        self.mountOptions = mountOptions
        linux = LinuxFeatures(
            namespaces: ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            capabilities: capabilities,
            cgroup: Cgroup(v1: false, v2: true, systemd: false, systemdUser: false, rdma: true),
            seccomp: Seccomp(enabled: true, actions: LinuxSeccomp.actions, operators: LinuxSeccomp.operators,
                             archs: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]),
            apparmor: Enabled(enabled: false),
            selinux: Enabled(enabled: false),
            intelRdt: Enabled(enabled: false),
            mountExtensions: MountExtensions(idmap: Enabled(enabled: false))
        )
        annotations = ["org.opencontainers.runtime-spec.features.version": version]
    }
}
