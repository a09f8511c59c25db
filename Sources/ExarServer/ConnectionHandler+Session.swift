import Dispatch
import ExarCore
import ExarModel
import NIOCore

/// A connection's session: binding to a collection (`Connect`, `Select`), dropping one, and
/// refusing wrong credentials. Opening and dropping touch the disk, so they run off the event
/// loop while this connection's later lines wait; other connections never wait for them.
extension ConnectionHandler {
    enum BindAnswer {
        case connected
        case selected
    }

    func bind(to name: String, answer: BindAnswer, context: ChannelHandlerContext) {
        if let open = database.openLease(name) {
            bound(to: open, answer: answer, context: context)
            return
        }
        blocked = true
        let database = self.database
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        DispatchQueue.global().async {
            let result = Result { () throws(ExarError) -> CollectionLease in try database.lease(name) }
            eventLoop.execute {
                handler.value.finishBind(name, answer: answer, result)
            }
        }
    }

    private func finishBind(_ name: String, answer: BindAnswer, _ result: Result<CollectionLease, ExarError>) {
        guard let context else { return }
        switch result {
        case .success(let lease):
            bound(to: lease, answer: answer, context: context)
        case .failure(let error):
            logger.info("opening collection '\(name)' failed: \(error)")
            var out = context.channel.allocator.buffer(capacity: 32)
            out.writeError(clientFacing(error.wireKindOnlyForBind))
            write(out, context)
        }
        blocked = false
        processWaitingLines(context)
    }

    private func bound(to lease: CollectionLease, answer: BindAnswer, context: ChannelHandlerContext) {
        self.lease = lease
        var out = context.channel.allocator.buffer(capacity: 16)
        switch answer {
        case .connected:
            machine.connected()
            out.writeConnected()
        case .selected:
            machine.selected()
            out.writeStaticString("Selected\n")
        }
        write(out, context)
    }

    /// `Drop`: deletes the collection off the loop, then answers `Dropped`.
    func drop(_ name: String, context: ChannelHandlerContext) {
        blocked = true
        let database = self.database
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        DispatchQueue.global().async {
            let result = Result { () throws(ExarError) in try database.drop(name) }
            eventLoop.execute {
                handler.value.finishDrop(name, result)
            }
        }
    }

    private func finishDrop(_ name: String, _ result: Result<Void, ExarError>) {
        guard let context else { return }
        var out = context.channel.allocator.buffer(capacity: 32)
        switch result {
        case .success:
            logger.info("collection '\(name)' dropped")
            out.writeStaticString("Dropped\n")
        case .failure(let error):
            logger.info("dropping collection '\(name)' failed: \(error)")
            out.writeError(clientFacing(error))
        }
        write(out, context)
        blocked = false
        processWaitingLines(context)
    }

    /// `Locate`: answered at once (index lookups and a walk of one index block), after the
    /// connection's earlier answers, so its own publishes are seen.
    func locate(_ timestamp: UInt64, context: ChannelHandlerContext) {
        var out = context.channel.allocator.buffer(capacity: 32)
        if let collection, !collection.isDropped {
            out.writeLocated(offset: collection.locate(timestamp: timestamp))
        } else {
            out.writeError(.connection(""))
        }
        write(out, context)
    }

    /// Answers wrong credentials late, reading nothing more from this connection meanwhile, and
    /// closes it after the last allowed failure: guessing costs time, and never another client's.
    func refuseLogin(afterMilliseconds delay: Int, close: Bool, context: ChannelHandlerContext) {
        blocked = true
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .milliseconds(Int64(delay))) {
            let handler = handler.value
            guard let context = handler.context else { return }
            var out = context.channel.allocator.buffer(capacity: 32)
            out.writeError(.authentication)
            if close {
                handler.logger.info("closing a connection after \(handler.machine.loginFailures) wrong logins")
                handler.closingAfterAnswers = true
                let channel = context.channel
                context.writeAndFlush(handler.wrapOutboundOut(out)).whenComplete { _ in channel.close(promise: nil) }
                return
            }
            handler.write(out, context)
            handler.blocked = false
            handler.processWaitingLines(context)
        }
    }
}

extension ExarError {
    /// The protocol's answer to a failed `Connect` or `Select`: `ConnectionError` (details go
    /// to the log), or the I/O error.
    fileprivate var wireKindOnlyForBind: ExarError {
        if case .io = self { return self }
        return .connection("")
    }
}
