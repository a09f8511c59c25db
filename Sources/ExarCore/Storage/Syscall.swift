#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ExarModel

/// Turns `errno` values into the protocol's I/O errors, worded as the original (Rust) server did.
enum Syscall {
    /// Calls `body` again while it fails with `EINTR`; returns its result or throws the errno as an I/O error.
    static func retrying(_ what: String, _ body: () -> Int32) throws(ExarError) -> Int32 {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            throw error(code, what)
        }
    }

    /// The I/O error of `code`, with `context` (a path or operation) in its description.
    static func error(_ code: Int32, _ context: String) -> ExarError {
        let message = String(cString: strerror(code))
        return .io(kind(of: code), "\(message) (os error \(code)): \(context)")
    }

    static func kind(of code: Int32) -> IoErrorKind {
        switch code {
        case ENOENT: .notFound
        case EACCES, EPERM, EROFS: .permissionDenied
        case EEXIST: .alreadyExists
        case EINTR: .interrupted
        case EAGAIN: .wouldBlock
        case EINVAL: .invalidInput
        case EPIPE: .brokenPipe
        case ETIMEDOUT: .timedOut
        default: .other
        }
    }
}
