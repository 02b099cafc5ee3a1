#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import BerthImage
import BerthOCI
import BerthOS
import BerthRuntime

struct SaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "save", abstract: "Write images to a docker-archive or oci-archive tarball.")
    @Option(name: .shortAndLong, help: "The archive to write.") var output: String
    @Option(help: "docker-archive (default) or oci-archive.") var format: String = "docker-archive"
    @Flag(name: .shortAndLong, help: "Accepted for compatibility.") var quiet = false
    @Argument(help: "Images.") var images: [String]

    func run() throws {
        guard let kind = ImageArchive.Format(rawValue: format) else {
            throw RuntimeError(.invalidArgument, "--format \"\(format)\": expected docker-archive or oci-archive")
        }
        guard !images.isEmpty else { throw ValidationError("save needs an image") }
        let destination = Files.absolute(output)
        try ImageContext.enterStoreNamespace()
        let store = ImageContext.store
        let selected = try images.map { name -> (record: ImageRecord, names: [String]) in
            let record = try ImageContext.lookup(name)
            let asked = (try? ImageReference(parsing: name)).map(\.description)
            let names = asked.flatMap { record.names.contains($0) ? [$0] : nil } ?? record.names
            return (record, names)
        }
        try ImageArchive(store: store, rootless: ImageContext.rootless).save(selected, format: kind, to: destination)
    }
}

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "load", abstract: "Load images from a docker-archive or oci-archive tarball.")
    @Option(name: .shortAndLong, help: "The archive to read.") var input: String
    @Flag(name: .shortAndLong, help: "Print only image IDs.") var quiet = false

    func run() throws {
        guard Files.exists(input) else { throw RuntimeError(.notFound, "\(input): no such file") }
        let source = Files.absolute(input)
        try ImageContext.enterStoreNamespace()
        signal(SIGPIPE, SIG_IGN)
        let archive = ImageArchive(store: ImageContext.store, rootless: ImageContext.rootless)
        let records = try awaitResult { try await archive.load(from: source) }
        for record in records {
            if quiet { printOut(record.id.hex); continue }
            if record.names.isEmpty { printOut("Loaded image: sha256:\(record.id.hex)") }
            for name in record.names { printOut("Loaded image: \(name)") }
        }
    }
}
