#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthOCI
import BerthOS
import Crypto

extension ImageStore {
    /// What `berth system check` found and did.
    package struct CheckReport: Sendable {
        /// Problems that remain (with `repair: false`, everything found).
        package var problems: [String] = []
        /// What was repaired.
        package var repaired: [String] = []
        /// Leftovers of interrupted operations that were removed (not problems).
        package var leftovers: [String] = []
        package var images = 0, layers = 0, blobs = 0

        package var clean: Bool { problems.isEmpty }
    }

    /// Verifies the store: every image record decodes and names a present,
    /// correct manifest and config and present layers; every layer directory
    /// is complete; every blob's content matches its name (full re-hash when
    /// `verifyContent`). With `repair`, what is broken is removed: a corrupt
    /// blob or layer, and an image record that depends on one (pull it again).
    /// Call with the lock held.
    package func check(repair: Bool, verifyContent: Bool) -> CheckReport {
        var report = CheckReport()
        report.leftovers = removeStaleTemporaries()
        func problem(_ text: String, fixedBy fix: () -> Void) {
            if repair { fix(); report.repaired.append(text) } else { report.problems.append(text) }
        }

        // Blobs: names must be digests, content must match.
        var badBlobs = Set<Digest>()
        for name in Files.list(blobsDirectory) {
            guard let digest = Digest("sha256:" + name) else {
                problem("blobs/sha256/\(name): not a digest") { Files.removeTree(blobsDirectory + "/" + name) }
                continue
            }
            report.blobs += 1
            if verifyContent, !ImageStore.verifyFile(blobPath(digest), digest) {
                badBlobs.insert(digest)
                problem("blob \(digest): content does not match its digest") { _ = unlink(blobPath(digest)) }
            }
        }

        // Layers: a directory whose record is missing or does not match is incomplete.
        var goodLayers = Set<Digest>()
        for name in Files.list(layersDirectory) {
            let path = layersDirectory + "/" + name
            guard let chainID = Digest("sha256:" + name), let record = layerRecord(chainID), record.chainID == chainID,
                  Files.isDirectory(path + "/diff") else {
                problem("layers/\(name): incomplete layer") { Files.removeTree(path) }
                continue
            }
            report.layers += 1
            goodLayers.insert(chainID)
        }

        // Images.
        for name in Files.list(imagesDirectory) {
            let path = imagesDirectory + "/" + name
            guard name.hasSuffix(".json") else {
                problem("images/\(name): not an image record") { Files.removeTree(path) }
                continue
            }
            guard let bytes = try? Files.read(path), let record = try? JSONDecoder().decode(ImageRecord.self, from: Data(bytes)),
                  "\(record.id.hex).json" == name else {
                problem("images/\(name): unreadable image record") { _ = unlink(path) }
                continue
            }
            report.images += 1
            var missing: [String] = []
            for digest in [record.id, record.manifestDigest] + (record.indexDigest.map { [$0] } ?? [])
            where !hasBlob(digest) || badBlobs.contains(digest) {
                missing.append("blob \(digest.short)")
            }
            if let config = try? readBlob(record.id),
               let parsed = try? JSONDecoder().decode(ImageConfiguration.self, from: Data(config)) {
                let chains = ImageStore.chainIDs(parsed.rootfs.diff_ids)
                if chains != record.layers.map(\.chainID) { missing.append("layer list (config disagrees)") }
            }
            for layer in record.layers where !goodLayers.contains(layer.chainID) {
                missing.append("layer \(layer.chainID.short)")
            }
            if !missing.isEmpty {
                let label = record.names.first ?? record.id.short
                problem("image \(label): missing or corrupt \(missing.joined(separator: ", ")); pull it again") { _ = unlink(path) }
            }
        }
        return report
    }

    static func verifyFile(_ path: String, _ digest: Digest) -> Bool {
        guard let fd = try? FileDescriptor.open(path, O_RDONLY | O_CLOEXEC) else { return false }
        defer { fd.close() }
        var hasher = Crypto.SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { (try? fd.read(into: $0)) ?? -1 }
            if n < 0 { return false }
            if n == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return ImageStore.hexString(hasher.finalize()) == digest.hex
    }

    /// Removes layers and blobs no image refers to (call with the lock held;
    /// `inUse` are layer chain IDs containers still need). Returns bytes freed (approximate).
    @discardableResult
    package func collectGarbage(keepLayers inUse: Set<Digest> = []) -> (layers: Int, blobs: Int) {
        let records = images()
        var liveLayers = inUse, liveBlobs = Set<Digest>()
        for record in records {
            for layer in record.layers {
                liveLayers.insert(layer.chainID)
                liveBlobs.insert(layer.blob)
            }
            liveBlobs.insert(record.id)
            liveBlobs.insert(record.manifestDigest)
            if let index = record.indexDigest { liveBlobs.insert(index) }
        }
        var removedLayers = 0, removedBlobs = 0
        for name in Files.list(layersDirectory) {
            guard let chainID = Digest("sha256:" + name), liveLayers.contains(chainID) else {
                // Rename first, so a half-removed layer is never taken for a complete one.
                let doomed = (try? temporaryPath("gc")) ?? (layersDirectory + "/" + name)
                if rename(layersDirectory + "/" + name, doomed) == 0 { Files.removeTree(doomed) } else { Files.removeTree(layersDirectory + "/" + name) }
                removedLayers += 1
                continue
            }
        }
        for name in Files.list(blobsDirectory) {
            guard let digest = Digest("sha256:" + name), liveBlobs.contains(digest) else {
                _ = unlink(blobsDirectory + "/" + name)
                removedBlobs += 1
                continue
            }
        }
        return (removedLayers, removedBlobs)
    }
}
