import ExarModel
import HTTPTypes
import Hummingbird
import NIOCore

/// An error answer of the API: a status, the protocol's error kind and a message, sent as
/// `{"error": kind, "message": message}`.
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    var kind: String
    var message: String
    /// The actual last id of the tag, in a conflict's answer (`409`).
    var actualId: UInt64?
    /// Headers to add (`WWW-Authenticate` of a 401).
    var headers: HTTPFields = [:]
    /// Close the connection after the answer (too many wrong guesses).
    var closeConnection = false

    init(_ status: HTTPResponse.Status, _ kind: String, _ message: String) {
        self.status = status
        self.kind = kind
        self.message = message
    }

    static func parse(_ message: String) -> APIError { APIError(.badRequest, "ParseError", message) }

    static func notFound(_ message: String) -> APIError { APIError(.notFound, "NotFound", message) }

    /// The answer to an engine error, with the status that fits it.
    init(_ error: ExarError, collectionFolder: String) {
        // Paths relative to the data folder, as on the protocol port.
        switch error.withPaths(relativeTo: collectionFolder) {
        case .validation(let message):
            self.init(.badRequest, "ValidationError", message)
        case .connection(let message):
            self.init(message.isEmpty ? .conflict : .badRequest, "ConnectionError",
                      message.isEmpty ? "the collection was dropped" : message)
        case .parse:
            self.init(.badRequest, "ParseError", error.description)
        case .authentication:
            self.init(.unauthorized, "AuthenticationError", "credentials required")
        case .io(.notConnected, let message):
            self.init(.serviceUnavailable, "IoError", message)
        case .io(_, let message):
            self.init(.internalServerError, "IoError", message)
        case .conflict(let actual):
            self.init(.conflict, "ConflictError", "the last event of the tag is \(actual)")
            actualId = actual
        case .eventStream(.closed):
            self.init(.serviceUnavailable, "EventStreamError", "the server is stopping")
        case .eventStream, .subscription:
            self.init(.badRequest, error.wireText.split(separator: "\t").first.map(String.init) ?? "Error", error.description)
        }
    }

    var response: Response {
        var writer = JSONWriter(ByteBuffer())
        writer.raw("{")
        writer.key("error")
        writer.string(kind)
        writer.raw(",")
        writer.key("message")
        writer.string(message)
        if let actualId {
            writer.raw(",")
            writer.key("actualId")
            writer.number(actualId)
        }
        writer.raw("}\n")
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        if closeConnection { fields[.connection] = "close" }
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: writer.buffer))
    }
}

/// Turns every error of a route (ours, the router's 404, a body over the limit) into the API's
/// JSON error, and adds the headers every answer carries.
struct ErrorAndHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    let dataFolder: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as APIError {
            response = error.response
        } catch let error as ExarError {
            response = APIError(error, collectionFolder: dataFolder).response
        } catch let error as HTTPResponseError {
            response = Self.translate(error.status).response
        } catch {
            response = APIError(.internalServerError, "IoError", "\(error)").response
        }
        response.headers[.xContentTypeOptions] = "nosniff"
        return response
    }

    static func translate(_ status: HTTPResponse.Status) -> APIError {
        switch status {
        case .notFound: .notFound("no such route")
        case .contentTooLarge: APIError(.contentTooLarge, "ValidationError", "request body too large")
        case .methodNotAllowed: APIError(.methodNotAllowed, "ParseError", "method not allowed")
        default: APIError(status, status.code >= 500 ? "IoError" : "ParseError", status.reasonPhrase)
        }
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let lastEventID = HTTPField.Name("Last-Event-ID")!
}
