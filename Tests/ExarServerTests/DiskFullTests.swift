import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif


/// glibc's `prlimit` (declared only under `_GNU_SOURCE`, so looked up at run time): sets a limit
/// of another process.
private func setLimit(of pid: pid_t, resource: Int32, to value: rlim_t) throws {
    typealias PrLimit = @convention(c) (pid_t, Int32, UnsafePointer<rlimit>?, UnsafeMutablePointer<rlimit>?) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prlimit") else { throw POSIXError(.ENOSYS) }
    let prlimit = unsafeBitCast(symbol, to: PrLimit.self)
    var limit = rlimit(rlim_cur: value, rlim_max: rlim_t.max)
    guard prlimit(pid, resource, &limit, nil) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EPERM) }
}

/// Publishing when a segment cannot be created: a file-size limit on the server process
/// (`EFBIG`) and a full tmpfs (`ENOSPC`). Both are real failures of the real syscalls.
@Suite(.serialized) struct DiskFullTests {
    /// Publishes 1000-byte events one burst of 10 at a time until one is refused; returns the ids
    /// acknowledged (with their data) and the first error line.
    private func publishUntilRefused(_ client: LineClient, from first: Int) -> (acknowledged: [UInt64: String], error: String?) {
        var acknowledged: [UInt64: String] = [:]
        var number = first
        for _ in 0..<200 {
            var batch = ""
            var data: [String] = []
            for _ in 0..<10 {
                number += 1
                let text = "event-\(number)-" + String(repeating: "x", count: 1000)
                data.append(text)
                batch += "Publish\tfull\t\(number)\t\(text)\n"
            }
            client.send(batch)
            var error: String?
            for text in data {
                guard let answer = client.readLine() else { return (acknowledged, "connection closed") }
                if answer.hasPrefix("Published\t"), let id = UInt64(answer.dropFirst(10)) {
                    #expect(error == nil, "an event acknowledged after a refused one in the same burst")
                    acknowledged[id] = text
                } else {
                    error = error ?? answer
                }
            }
            if let error { return (acknowledged, error) }
        }
        return (acknowledged, nil)
    }

    /// Every acknowledged event is stored with its data, ids are consecutive, nothing else is there.
    private func expectStored(_ server: ExarProcess, _ acknowledged: [UInt64: String]) throws {
        let stored = try #require(try readAllEvents(port: server.port))
        #expect(stored.count == acknowledged.count)
        for (index, event) in stored.enumerated() {
            let fields = event.split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false)
            #expect(fields.first.map(String.init) == "\(index + 1)")
            #expect(fields.count == 4 && acknowledged[UInt64(index + 1)] == String(fields[3]))
        }
    }

    /// Runs `fill` (which makes new files fail) and `free` (which makes room again) around a publisher.
    private func exercise(_ server: ExarProcess, expectedError: String, fill: () throws -> Void, free: () throws -> Void) async throws {
        let client = try LineClient(port: server.port)
        client.send("Connect\tc\n")
        #expect(client.readLine() == "Connected")
        try fill()
        var (acknowledged, error) = publishUntilRefused(client, from: 0)
        #expect(acknowledged.count > 10, "the first segment should take some events")
        let refusal = try #require(error)
        #expect(refusal.hasPrefix("Error\tIoError\t") && refusal.contains(expectedError), "\(refusal)")
        // The answer names the file relative to the data folder, never where the server keeps it.
        #expect(!refusal.contains(server.dataFolder) && refusal.contains("c/0"), "\(refusal)")
        // Refused again while it lasts; reads keep working; a new collection cannot start either.
        let retry = publishUntilRefused(client, from: 10_000)
        #expect(retry.acknowledged.isEmpty && retry.error?.hasPrefix("Error\tIoError\t") == true)
        try expectStored(server, acknowledged)
        let other = try LineClient(port: server.port)
        other.send("Connect\tfresh\n")
        #expect(other.readLine()?.hasPrefix("Error\tIoError\t") == true)
        #expect(server.log.contains("publishing failed"))

        try free()
        let next = UInt64(acknowledged.count + 1)
        client.send("Publish\tfull\t1\tafter\n")
        #expect(client.readLine() == "Published\t\(next)")
        acknowledged[next] = "after"
        try expectStored(server, acknowledged)
        // A clean stop and start: nothing to cut, everything there; the files verify.
        #expect(server.stop() == 0)
        try await server.start()
        try expectStored(server, acknowledged)
        #expect(!server.log.contains("cut "))
        let verify = Process()
        verify.executableURL = productsFolder.appendingPathComponent("exar-inspect")
        verify.arguments = ["verify", server.dataFolder + "/c"]
        verify.standardOutput = FileHandle.nullDevice
        try verify.run()
        verify.waitUntilExit()
        #expect(verify.terminationStatus == 0)
    }

    @Test func aFileSizeLimitRefusesPublishesUntilLifted() async throws {
        let server = try ExarProcess(database: ["segment_size = 65536"])
        defer { server.removeFiles() }
        try await server.start()
        let pid = server.pid
        func setFileSizeLimit(_ bytes: rlim_t) throws {
            try setLimit(of: pid, resource: Int32(RLIMIT_FSIZE.rawValue), to: bytes)
        }
        // New segments (64 KiB) cannot be made under 16 KiB; the server ignores SIGXFSZ.
        try await exercise(server, expectedError: "File too large",
                           fill: { try setFileSizeLimit(16 * 1024) },
                           free: { try setFileSizeLimit(rlim_t.max) })
        #expect(server.stop() == 0)
    }

    @Test(.enabled(if: canMountTmpfs, "needs root to mount a tmpfs"))
    func aFullFileSystemRefusesPublishesUntilThereIsRoom() async throws {
        let server = try ExarProcess(database: ["segment_size = 65536"])
        defer { server.removeFiles() }
        guard try mountTmpfs(at: server.dataFolder, size: "1m") else { return }
        defer { umount2(server.dataFolder, Int32(MNT_DETACH)) }
        try await server.start()
        let ballast = server.dataFolder + "/ballast"
        try await exercise(server, expectedError: "No space left on device",
                           fill: {
                               // Fill the file system, then give back 64 KiB: room for some
                               // events (files are allocated as they fill), not for a segment.
                               let fd = open(ballast, O_CREAT | O_WRONLY, 0o644)
                               defer { close(fd) }
                               var size = 1 << 20
                               while size > 4096 && posix_fallocate(fd, 0, off_t(size)) != 0 { size -= 4096 }
                               ftruncate(fd, off_t(max(0, size - 64 * 1024)))
                           },
                           free: { unlink(ballast) })
        #expect(server.stop() == 0)
    }
}
