import ArgumentParser
import BerthImage
import BerthOS
import BerthRuntime

struct SaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "save", abstract: "Write images to a docker-archive or oci-archive tarball.")
    @Option(name: .shortAndLong, help: "The archive to write.") var output: String
    @Option(help: "docker-archive (default) or oci-archive.") var format: String = "docker-archive"
    @Flag(name: .shortAndLong) var quiet = false
    @Argument(help: "Images.") var images: [String]

    func run() throws {
        throw RuntimeError(.unsupported, "save is not built yet")
    }
}

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load", abstract: "Load images from a docker-archive or oci-archive tarball.")
    @Option(name: .shortAndLong, help: "The archive to read.") var input: String
    @Flag(name: .shortAndLong) var quiet = false

    func run() throws {
        throw RuntimeError(.unsupported, "load is not built yet")
    }
}
