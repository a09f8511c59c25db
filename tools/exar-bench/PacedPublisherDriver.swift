import ExarNet
import NIOCore

/// Publishes `total` events at `rate` per second (paced every millisecond), each carrying its send
/// time at the start of its data: to exar-db (`Publish` lines after a `Connect`) or to Redis
/// (`XADD` to a stream, for the side-by-side fan-out). With several exar-db `collections` the
/// events go to them in turn, each after a `Select` (whose `Selected` is not an answer counted).
final class PacedPublisherDriver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Peer {
        case exar(connectLine: ByteBuffer)
        case redis(key: String)
    }

    private let peer: Peer
    private let total: Int
    private let rate: Int
    private let padding: String
    private let done: EventLoopPromise<Void>
    private let collections: [String]
    private var sent = 0
    private var answered = 0
    private var started: UInt64 = 0
    private var ticking = false

    init(peer: Peer, total: Int, rate: Int, size: Int, collections: [String] = [], done: EventLoopPromise<Void>) {
        self.peer = peer
        self.collections = collections
        self.total = total
        self.rate = max(1, rate)
        self.padding = String(repeating: "x", count: max(0, size - 20))
        self.done = done
    }

    func channelActive(context: ChannelHandlerContext) {
        switch peer {
        case .exar(let connectLine): context.writeAndFlush(wrapOutboundOut(connectLine), promise: nil)
        case .redis: startTicking(context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        guard ticking else {
            startTicking(context)  // exar-db's `Connected`
            return
        }
        if case .exar = peer, collections.count > 1, line.readableBytesView.starts(with: "Selected".utf8) { return }
        if case .redis = peer {
            // A reply is "$<length>" then the id, or "-<error>".
            guard let first = line.readableBytesView.first, first != UInt8(ascii: "$") else { return }
            if first == UInt8(ascii: "-") {
                done.fail(BenchError("redis answered \(String(buffer: line))"))
                context.close(promise: nil)
                return
            }
        }
        answered += 1
        if answered == total {
            done.succeed(())
            context.close(promise: nil)
        }
    }

    private func startTicking(_ context: ChannelHandlerContext) {
        ticking = true
        started = monotonicNanoseconds()
        tick(context)
    }

    /// Sends what the rate allows by now, then comes back in a millisecond.
    private func tick(_ context: ChannelHandlerContext) {
        let elapsed = monotonicNanoseconds() - started
        let due = min(total, Int(Double(elapsed) / 1e9 * Double(rate)) + 1)
        if due > sent {
            var out = context.channel.allocator.buffer(capacity: (due - sent) * (padding.utf8.count + 64))
            while sent < due {
                let data = String(monotonicNanoseconds()) + " " + padding
                switch peer {
                case .exar:
                    if collections.count > 1 { out.writeSelect(collection: collections[sent % collections.count]) }
                    out.writePublish(tags: ["fan"], timestamp: 0, data: data)
                case .redis(let key):
                    var command = respCommand(["XADD", key, "*", "data", data])
                    out.writeBuffer(&command)
                }
                sent += 1
            }
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        }
        if sent < total {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(1)) {
                loopBound.value.0.tick(loopBound.value.1)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(BenchError("publisher closed after \(answered) of \(total) answers"))
    }
}
