// A publisher for the crash tests: it publishes bursts into a collection and prints each
// acknowledged range ("<first id> <count>") on stdout, until it is killed.
//
// usage: exar-crash-helper <logs_path> <collection> <segment_size> <none|lz4> <start_event_number> [<retention max_bytes>]
import ExarCore
import ExarModel
import Foundation

/// Writes a line to stdout at once (no buffering: the process may be killed any moment).
func emit(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in _ = write(STDOUT_FILENO, bytes.baseAddress, bytes.count) }
}
let arguments = CommandLine.arguments
guard arguments.count == 6 || arguments.count == 7, let segmentSize = Int(arguments[3]), let start = Int(arguments[5]),
      let maxBytes = arguments.count == 7 ? UInt64(arguments[6]) : 0
else {
    FileHandle.standardError.write("usage: exar-crash-helper <logs_path> <collection> <segment_size> <none|lz4> <start> [<max_bytes>]\n".data(using: .utf8)!)
    exit(2)
}
let configuration = DatabaseConfiguration(
    logsPath: arguments[1],
    defaults: CollectionConfiguration(segmentSize: segmentSize, indexIntervalBytes: 512,
                                      compression: arguments[4] == "lz4" ? .lz4 : .none,
                                      retention: RetentionPolicy(maxBytes: maxBytes)))
let database = try Database(configuration: configuration)
let collection = try database.collection(arguments[2])

/// The data of the n-th event ever published (1-based), so the test can check it by id.
func payload(_ number: Int) -> String {
    "event-\(number)-" + String(repeating: "abcdefgh", count: number % 13)
}

var number = start
let semaphore = DispatchSemaphore(value: 0)
while true {
    let burst = 1 + number % 7
    let first = number
    try collection.publish({ (appender: inout PublishAppender) throws(ExarError) in
        for offset in 0..<burst {
            try appender.append(Event(timestamp: UInt64(first + offset), tags: ["crash", "n\((first + offset) % 5)"],
                                      data: payload(first + offset)))
        }
    }, completion: { result in
        if let ids = result.ids {
            emit("\(ids.lowerBound) \(ids.count)")
        }
        semaphore.signal()
    })
    semaphore.wait()
    number += burst
}
