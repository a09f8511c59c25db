import ArgumentParser
import ExarCore
import Foundation

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every batch's checksum, the index and tag bitmaps, and id continuity.",
        discussion: "Exits 0 when everything is consistent, 1 with the first bad file and position otherwise.")

    @Argument(help: "A collection folder or a segment file.") var path: String

    func run() throws {
        let report = try CollectionVerifier.verify(segmentFiles: segmentFiles(path))
        switch report {
        case .ok:
            print(report.message)
        case .corrupt:
            FileHandle.standardError.write(Data((report.message + "\n").utf8))
            Foundation.exit(1)
        }
    }
}

struct Repair: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Repair a collection as the server does on start: cut a torn tail, rebuild index and tag files.",
        discussion: """
            The only command that writes. Stop the server first: it refuses while a server has the
            collection open. Sealed segments are never changed; a damaged batch inside one stays
            (readers skip it). Prints what it did, or that there was nothing to do.
            """)

    @Argument(help: "A collection folder.") var path: String
    @Option(help: "The index interval for rebuilt index files (default: as recorded in the folder).")
    var indexIntervalBytes: Int?

    func run() throws {
        let notes = try CollectionRepair.repair(directory: path, indexIntervalBytes: indexIntervalBytes)
        if notes.isEmpty {
            print("nothing to repair in \(path)")
        }
        for note in notes {
            print("repaired: \(note)")
        }
    }
}
