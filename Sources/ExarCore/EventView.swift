import ExarModel

/// An event as it lies in storage: its tags and data point into mapped (or decompressed) memory
/// and are valid only during the call that receives the view.
public struct EventView {
    /// The event's id.
    public let id: UInt64
    /// Milliseconds since the Unix epoch.
    public let timestamp: UInt64
    /// The tags, UTF-8, separated by single spaces.
    public let tags: UnsafeRawBufferPointer
    /// The data bytes.
    public let data: UnsafeRawBufferPointer

    /// A view of bytes the caller keeps valid while the view is used.
    package init(id: UInt64, timestamp: UInt64, tags: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer) {
        self.id = id
        self.timestamp = timestamp
        self.tags = tags
        self.data = data
    }

    /// Copies the view into an ``Event``.
    public func makeEvent() -> Event {
        Event(
            id: id, timestamp: timestamp,
            tags: String(decoding: tags, as: UTF8.self).split(separator: " ").map(String.init),
            data: String(decoding: data, as: UTF8.self))
    }

    /// Whether the event carries `tag` (the UTF-8 bytes of one tag).
    public func hasTag(_ tag: UnsafeRawBufferPointer) -> Bool {
        TagBloom.fieldContains(tags, tag: tag)
    }
}
