import BerthOCI
import BerthOS
import FoundationEssentials

/// OCI hooks: each runs with the container's state JSON on stdin.
enum HookRunner {
    enum Kind: String {
        case prestart, createRuntime, createContainer, startContainer, poststart, poststop

        /// poststart and poststop failures are warnings (runtime-spec).
        var failureIsFatal: Bool { self != .poststart && self != .poststop }
    }

    static func hooks(_ kind: Kind, in spec: Spec) -> [Hook] {
        switch kind {
        case .prestart: spec.hooks?.prestart ?? []
        case .createRuntime: spec.hooks?.createRuntime ?? []
        case .createContainer: spec.hooks?.createContainer ?? []
        case .startContainer: spec.hooks?.startContainer ?? []
        case .poststart: spec.hooks?.poststart ?? []
        case .poststop: spec.hooks?.poststop ?? []
        }
    }

    static func encode(_ state: State) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return (try? Array(encoder.encode(state))) ?? []
    }

    /// Runs every hook of `kind`; a fatal failure throws, others warn.
    static func run(_ kind: Kind, spec: Spec, state: State, warn: (String) -> Void) throws(RuntimeError) {
        let list = hooks(kind, in: spec)
        guard !list.isEmpty else { return }
        let input = encode(state)
        for (index, hook) in list.enumerated() {
            let failure: String?
            do {
                let result = try Subprocess.run(hook.path, arguments: hook.args ?? [hook.path], environment: hook.env ?? [],
                                                input: input, timeout: hook.timeout, captureStandardError: true)
                if result.timedOut {
                    failure = "timed out after \(hook.timeout ?? 0)s"
                } else if result.status != .exited(0) {
                    let detail = result.standardError.trimmed
                    failure = "\(describe(result.status))\(detail.isEmpty ? "" : ": " + detail)"
                } else {
                    failure = nil
                }
            } catch {
                failure = "\(error)"
            }
            if let failure {
                let message = "\(kind.rawValue) hook #\(index) (\(hook.path)) failed: \(failure)"
                if kind.failureIsFatal { throw RuntimeError(.failed, message) }
                warn(message)
            }
        }
    }

    static func describe(_ status: ExitStatus) -> String {
        switch status {
        case .exited(let code): "exit status \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}
