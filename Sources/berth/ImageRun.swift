#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ArgumentParser
import BerthImage
import BerthOCI
import BerthOS
import BerthRuntime

/// `berth run` and `berth create` are the engine's (`run [flags] IMAGE
/// [COMMAND...]`) except for runc's command lines: a bundle named with
/// -b/--bundle, a runc-only flag, or ./config.json with an id as the only
/// argument.
enum ImageRun {
    /// Whether `berth run ARGS` means an image (not runc's bundle run).
    static func applies(_ arguments: [String]) -> Bool {
        // Flags only runc's `run` has.
        let runcOnly: Set<String> = ["-b", "--bundle", "--pid-file", "--console-socket", "--no-pivot", "--preserve-fds",
                                     "--no-new-keyring", "--no-subreaper", "--keep"]
        let runcValued: Set<String> = ["-b", "--bundle", "--pid-file", "--console-socket", "--preserve-fds"]
        if arguments.contains(where: { runcOnly.contains($0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0) }) {
            return false
        }
        if arguments.contains("--help") || arguments.contains("-h") { return false }
        var positional: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if runcValued.contains(argument) { index += 2; continue }
            if !argument.hasPrefix("-") { positional.append(argument) }
            index += 1
        }
        if Files.exists("config.json") && positional.count <= 1 { return false }
        return !positional.isEmpty
    }
}
