import ExarCore
import ExarModel
import Prometheus

/// `/metrics`: the engine's and the server's counters, copied into a swift-prometheus registry at
/// each scrape and written in the Prometheus text format.
///
/// Nothing is counted here: the engine and the protocol server keep their own cheap counters
/// (atomics added to per write, per burst). A scrape sets the gauges and moves each counter by
/// what its source counted since the last scrape. The histograms are kept by the engine in fixed
/// buckets and written in the same format after the registry's output (a swift-prometheus
/// histogram takes single observations only, and the engine counts a whole burst at once).
final class MetricsExporter: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let version: String
    /// What each counter's source had counted at the last scrape, by metric and label.
    private let seen = Locked<[String: UInt64]>([:])
    /// The collections of the last scrape, whose series go when a collection does.
    private let known = Locked<Set<String>>([])
    /// The groups of the last scrape (collection and group name), whose series go with them.
    private let knownGroups = Locked<Set<[String]>>([])
    /// Held for a whole scrape: counters move by differences from the last one.
    private let scrape = Locked<Int>(0)

    init(version: String) {
        self.version = version
    }

    func render(collections: [CollectionStatistics], server: ServerStatistics, freeBytes: UInt64) -> [UInt8] {
        var out = scrape.withLock { scrapes in
            scrapes += 1
            update(collections: collections, server: server, freeBytes: freeBytes)
            return registry.emitToBuffer()
        }
        histogram(&out, "exar_publish_duration_seconds",
                  help: "Receipt of a publish to its answer, protocol port and HTTP API.",
                  series: [("", server.publishDurations)])
        histogram(&out, "exar_sync_duration_seconds", help: "fdatasync of a collection's active segment.",
                  series: collections.map { (Self.label("collection", $0.name), $0.syncs) })
        return out
    }

    private func update(collections: [CollectionStatistics], server: ServerStatistics, freeBytes: UInt64) {
        gauge("exar_build_info", labels: [("version", version)]).set(to: 1)
        let names = Set(collections.map(\.name))
        let gone = known.withLock { known in
            defer { known = names }
            return known.subtracting(names)
        }
        for name in gone { forget(collection: name) }
        updateGroups(collections)
        for collection in collections {
            let labels = [("collection", collection.name)]
            count("exar_events_appended_total", labels, collection.eventsAppended)
            count("exar_event_bytes_appended_total", labels, collection.eventBytesAppended)
            count("exar_events_delivered_total", labels, collection.eventsDelivered)
            count("exar_retention_deleted_segments_total", labels,
                  collection.retentionDeletedSegments)
            count("exar_retention_deleted_bytes_total", labels,
                  collection.retentionDeletedBytes)
            gauge("exar_collection_first_id", labels: labels).set(to: Double(collection.firstId))
            gauge("exar_collection_last_id", labels: labels).set(to: Double(collection.lastId))
            gauge("exar_collection_size_bytes", labels: labels).set(to: Double(collection.bytesOnDisk))
            gauge("exar_collection_segments", labels: labels).set(to: Double(collection.segments))
            gauge("exar_subscriptions_active", labels: labels).set(to: Double(collection.subscriptionsActive))
        }
        for reason in PublishRejection.allCases {
            count("exar_publish_rejected_total", [("reason", reason.rawValue)],
                  server.publishRejected[reason] ?? 0)
        }
        gauge("exar_connections_active", labels: []).set(to: Double(server.connectionsActive))
        count("exar_connections_opened_total", [], server.connectionsOpened)
        gauge("exar_disk_free_bytes", labels: []).set(to: Double(freeBytes))
    }

    private func updateGroups(_ collections: [CollectionStatistics]) {
        var names = Set<[String]>()
        for collection in collections {
            for group in collection.groups {
                names.insert([collection.name, group.name])
                let labels = [("collection", collection.name), ("group", group.name)]
                gauge("exar_group_acked_id",
                      labels: labels).set(to: Double(group.ackedFloor))
                gauge("exar_group_lag_events", labels: labels)
                    .set(to: Double(collection.lastId > group.ackedFloor ? collection.lastId - group.ackedFloor : 0))
                gauge("exar_group_members", labels: labels).set(to: Double(group.members))
                gauge("exar_group_in_flight_events", labels: labels).set(to: Double(group.inFlight))
                gauge("exar_group_parked_events", labels: labels).set(to: Double(group.parked.count))
                count("exar_group_redelivered_total", labels, group.redelivered)
                count("exar_group_parked_total", labels, group.parkedTotal)
                count("exar_group_lost_total", labels, group.lost)
            }
        }
        let gone = knownGroups.withLock { known in
            defer { known = names }
            return known.subtracting(names)
        }
        for key in gone {
            let labels = [("collection", key[0]), ("group", key[1])]
            for metric in Self.groupGaugeNames {
                registry.unregisterGauge(registry.makeGauge(descriptor: Self.descriptor(metric), labels: labels))
            }
            for metric in Self.groupCounterNames {
                registry.unregisterCounter(registry.makeCounter(descriptor: Self.descriptor(metric), labels: labels))
                seen.withLock { $0[metric + "\u{0}" + key.joined(separator: "\u{0}")] = nil }
            }
        }
    }

    private static let groupGaugeNames = [
        "exar_group_acked_id", "exar_group_lag_events", "exar_group_members", "exar_group_in_flight_events", "exar_group_parked_events",
    ]
    private static let groupCounterNames = ["exar_group_redelivered_total", "exar_group_parked_total", "exar_group_lost_total"]

    private static let counterNames = [
        "exar_events_appended_total", "exar_event_bytes_appended_total", "exar_events_delivered_total",
        "exar_retention_deleted_segments_total", "exar_retention_deleted_bytes_total",
    ]
    private static let gaugeNames = [
        "exar_collection_first_id", "exar_collection_last_id", "exar_collection_size_bytes",
        "exar_collection_segments", "exar_subscriptions_active",
    ]

    private func forget(collection name: String) {
        let labels = [("collection", name)]
        for metric in Self.counterNames {
            registry.unregisterCounter(registry.makeCounter(descriptor: Self.descriptor(metric), labels: labels))
            seen.withLock { $0[metric + "\u{0}" + name] = nil }
        }
        for metric in Self.gaugeNames {
            registry.unregisterGauge(registry.makeGauge(descriptor: Self.descriptor(metric), labels: labels))
        }
    }

    /// Moves the counter to `value`: by the difference, or from zero when its source restarted
    /// (a collection dropped and made again).
    private func count(_ name: String, _ labels: [(String, String)], _ value: UInt64) {
        let counter = registry.makeCounter(descriptor: Self.descriptor(name), labels: labels)
        let key = name + "\u{0}" + labels.map(\.1).joined(separator: "\u{0}")
        let before = seen.withLock { seen -> UInt64 in
            defer { seen[key] = value }
            return seen[key] ?? 0
        }
        if value < before {
            counter.reset()
            counter.increment(by: Int64(clamping: value))
        } else if value > before {
            counter.increment(by: Int64(clamping: value - before))
        }
    }

    private func gauge(_ name: String, labels: [(String, String)]) -> Gauge {
        registry.makeGauge(descriptor: Self.descriptor(name), labels: labels)
    }

    /// The registry wants a name in parts; ours are whole (`exar_collection_last_id`). The help
    /// text must be the same at every use of a name, unregistering included (the registry stops
    /// the process otherwise), so it is looked up here.
    private static func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: helpTexts[name] ?? "")
    }

    private static let helpTexts: [String: String] = [
        "exar_build_info": "The version of exar-db.",
        "exar_events_appended_total": "Events appended since the collection was opened.",
        "exar_event_bytes_appended_total": "Bytes of tags and data appended.",
        "exar_events_delivered_total": "Events handed to subscribers (each delivery counts).",
        "exar_retention_deleted_segments_total": "Segments retention deleted since the collection was opened.",
        "exar_retention_deleted_bytes_total": "Bytes of the segment files retention deleted.",
        "exar_collection_first_id": "The first stored (retained) id (0 when empty).",
        "exar_collection_last_id": "The last stored id (0 when empty).",
        "exar_collection_size_bytes": "Bytes the collection's files take on disk.",
        "exar_collection_segments": "Segment files of the collection.",
        "exar_subscriptions_active": "Subscriptions running now.",
        "exar_publish_rejected_total": "Publishes answered with an error, by reason.",
        "exar_connections_active": "Protocol connections open now.",
        "exar_connections_opened_total": "Protocol connections accepted since the start.",
        "exar_disk_free_bytes": "Bytes free on the data folder's file system.",
        "exar_group_acked_id": "Every event up to this id is acknowledged by the group (or parked or lost).",
        "exar_group_lag_events": "The collection's last id minus the group's acknowledged id.",
        "exar_group_members": "Members joined now.",
        "exar_group_in_flight_events": "Events members hold unacknowledged.",
        "exar_group_parked_events": "Events parked now.",
        "exar_group_redelivered_total": "Deliveries of an event after its first.",
        "exar_group_parked_total": "Events parked after max_deliver deliveries.",
        "exar_group_lost_total": "Events retention deleted before the group acknowledged them.",
    ]

    static func label(_ name: String, _ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return "\(name)=\"\(escaped)\""
    }

    /// A histogram family in the text format: cumulative `_bucket`s with `le`, `_sum`, `_count`.
    private func histogram(_ out: inout [UInt8], _ name: String, help: String, series: [(labels: String, ExarCore.DurationHistogram)]) {
        var text = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (labels, histogram) in series {
            let prefix = labels.isEmpty ? "" : labels + ","
            var cumulative: UInt64 = 0
            for (index, bound) in ExarCore.DurationHistogram.bounds.enumerated() {
                cumulative += histogram.counts[index]
                text += "\(name)_bucket{\(prefix)le=\"\(bound)\"} \(cumulative)\n"
            }
            text += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(histogram.count)\n"
            let braces = labels.isEmpty ? "" : "{\(labels)}"
            text += "\(name)_sum\(braces) \(histogram.sum)\n\(name)_count\(braces) \(histogram.count)\n"
        }
        out.append(contentsOf: text.utf8)
    }
}
