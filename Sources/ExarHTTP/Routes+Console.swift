import ExarCore
import ExarModel
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The console's files (`/` and `/console/<file>`, from the module's resources) and the
/// segments and verify routes it shows.
extension ExarHTTPServer {
    func addConsoleRoutes(to router: Router<ExarRequestContext>) {
        let files = ConsoleFiles.load()
        if files.files.isEmpty {
            logger.warning("console files not found in \(ConsoleFiles.folder): the console answers 404, the API and /metrics work (install the folder exar-db_ExarHTTP.resources beside exar-db)")
        }
        router.get("/") { request, _ in
            try files.response(for: "index.html", request)
        }
        router.get("/console/:file") { request, context in
            try files.response(for: context.parameters.get("file") ?? "", request)
        }
        router.get("/api/v1/collections/:name/segments") { [self] _, context in
            // Opened to check that it exists; the listing reads its files, not the open collection.
            let collection = try await existing(context).collection
            let directory = database.configuration.directory(forCollection: collection.name)
            let listings = try await offloaded { () throws(ExarError) in try CollectionVerifier.list(directory: directory) }
            var writer = JSONWriter(ByteBuffer())
            writer.raw("[")
            for (number, segment) in listings.enumerated() {
                if number > 0 { writer.raw(",") }
                writer.segment(segment)
            }
            writer.raw("]\n")
            return Self.json(writer)
        }
        router.post("/api/v1/collections/:name/verify") { [self] request, context in
            try Self.requireJSONContentType(request)
            let collection = try await existing(context).collection
            let directory = database.configuration.directory(forCollection: collection.name)
            let report = await offloaded { CollectionVerifier.verify(directory: directory) }
            var writer = JSONWriter(ByteBuffer())
            writer.raw("{")
            switch report {
            case .ok(let segments, let events):
                writer.key("ok"); writer.bool(true)
                writer.raw(","); writer.key("segments"); writer.number(segments)
                writer.raw(","); writer.key("events"); writer.number(events)
            case .corrupt(let file, let position, _):
                writer.key("ok"); writer.bool(false)
                writer.raw(","); writer.key("file"); writer.string((file as NSString).lastPathComponent)
                writer.raw(","); writer.key("position"); writer.number(position)
            }
            writer.raw(","); writer.key("message"); writer.string(report.message.replacingOccurrences(of: directory + "/", with: ""))
            writer.raw("}\n")
            return Self.json(writer)
        }
    }
}

extension JSONWriter {
    mutating func segment(_ segment: SegmentListing) {
        raw("{"); key("file"); string(segment.name)
        raw(","); key("state"); string(segment.state.rawValue)
        raw(","); key("events"); number(segment.events)
        raw(","); key("firstId"); optional(segment.firstId)
        raw(","); key("lastId"); optional(segment.lastId)
        raw(","); key("bytesUsed"); number(segment.bytesUsed)
        raw(","); key("fileSize"); number(segment.fileSize)
        raw(","); key("firstTimestamp"); optional(segment.firstTimestamp)
        raw(","); key("lastTimestamp"); optional(segment.lastTimestamp)
        raw(","); key("batches"); number(segment.batches)
        raw(","); key("lz4Ratio"); number(segment.lz4Ratio)
        raw(","); key("problem")
        if let problem = segment.problem { string("at \(problem.position): \(problem.reason)") } else { raw("null") }
        raw("}")
    }

    mutating func optional(_ value: UInt64?) {
        if let value { number(value) } else { raw("null") }
    }
}

/// The console's static files, read once from the module's resources, each with an ETag.
struct ConsoleFiles: Sendable {
    struct File: Sendable {
        var bytes: ByteBuffer
        var contentType: String
        var etag: String
    }

    var files: [String: File]

    /// The folder of the console's files: `exar-db_ExarHTTP.resources/Console` beside the
    /// executable, where the build puts it. Looked up by hand rather than through `Bundle.module`,
    /// whose accessor stops the process when the folder is missing (a binary copied alone).
    static var folder: String {
        Bundle.main.bundleURL.path + "/exar-db_ExarHTTP.resources/Console"
    }

    /// The files, or none when the folder is missing (the console's routes then answer 404).
    static func load() -> ConsoleFiles {
        var files: [String: File] = [:]
        let folder = Self.folder
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            return ConsoleFiles(files: [:])
        }
        for name in names {
            guard let data = FileManager.default.contents(atPath: folder + "/" + name) else { continue }
            let bytes = [UInt8](data)
            files[name] = File(bytes: ByteBuffer(bytes: bytes), contentType: contentType(of: name),
                               etag: "\"\(String(fnv1a(bytes), radix: 16))\"")
        }
        return ConsoleFiles(files: files)
    }

    func response(for name: String, _ request: Request) throws -> Response {
        guard let file = files[name] else { throw APIError.notFound("no console file \(name)") }
        var headers: HTTPFields = [.contentType: file.contentType, .eTag: file.etag, .cacheControl: "no-cache"]
        if file.contentType.hasPrefix("text/html") {
            headers[.contentSecurityPolicy] = "default-src 'self'; frame-ancestors 'none'"
        }
        if request.headers[.ifNoneMatch]?.split(separator: ",").contains(where: {
            $0.trimmingCharacters(in: .whitespaces) == file.etag
        }) == true {
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: file.bytes))
    }

    static func contentType(of name: String) -> String {
        switch (name as NSString).pathExtension {
        case "html": "text/html; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "ico": "image/x-icon"
        case "json": "application/json"
        default: "application/octet-stream"
        }
    }

    /// FNV-1a over the bytes: an ETag changes with the file.
    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        return hash
    }
}

extension HTTPField.Name {
    static let contentSecurityPolicy = HTTPField.Name("Content-Security-Policy")!
}
