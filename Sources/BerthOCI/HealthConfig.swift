/// An image's (or a container's) health check, as docker's image config
/// and podman's inspect spell it (`Healthcheck`): the command and its
/// timing, durations in nanoseconds.
///
/// `Test` is `["CMD", arg...]` (run as is), `["CMD-SHELL", command]`
/// (run by `/bin/sh -c`), `["NONE"]` (no check) or empty (inherit).
/// A zero duration or retry count means "the default".
public struct HealthConfig: Codable, Sendable, Equatable {
    public var Test: [String]?
    public var Interval: Int64?
    public var Timeout: Int64?
    public var StartPeriod: Int64?
    public var StartInterval: Int64?
    public var Retries: Int?

    public init(Test: [String]? = nil, Interval: Int64? = nil, Timeout: Int64? = nil, StartPeriod: Int64? = nil, Retries: Int? = nil) {
        self.Test = Test
        self.Interval = Interval
        self.Timeout = Timeout
        self.StartPeriod = StartPeriod
        self.Retries = Retries
    }

    /// The argv the check runs, or nil when there is no check (`NONE`, empty).
    public var command: [String]? {
        guard let test = Test, let kind = test.first else { return nil }
        let arguments: [String]
        switch kind.uppercased() {
        case "", "NONE": return nil
        case "CMD": arguments = Array(test.dropFirst())
        case "CMD-SHELL": arguments = ["/bin/sh", "-c", test.dropFirst().joined(separator: " ")]
        default: arguments = test
        }
        guard let first = arguments.first, !first.isEmpty else { return nil }
        return arguments
    }
}
