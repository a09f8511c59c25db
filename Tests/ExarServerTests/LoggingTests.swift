import Foundation
import Logging
import Testing

@testable import exar_db

#if canImport(Glibc)
import Glibc
#endif

/// chrono's strftime formats as `{d(...)}` renders them, on fixed moments.
@Suite struct StrftimeFormatTests {
    /// 2016-03-20T22:22:20.644420340Z, a Sunday (log4rs's own documentation example).
    private let utc = LogTime(unixSeconds: 1_458_512_540, nanosecond: 644_420_340, utcOffset: 0, isUTC: true)
    /// The same moment in a zone eight hours west.
    private let pacific = LogTime(unixSeconds: 1_458_512_540, nanosecond: 644_420_340, utcOffset: -8 * 3600, isUTC: false)

    private func format(_ format: String, _ time: LogTime) -> String { StrftimeFormat(format).format(time) }

    @Test(arguments: [
        ("%Y-%m-%d %H:%M:%S%.3f", "2016-03-20 22:22:20.644"),
        ("%+", "2016-03-20T22:22:20.644420340+00:00"),
        ("%Y-%m-%d %H:%M:%S %Z", "2016-03-20 22:22:20 UTC"),
        ("%a %A %b %B %h", "Sun Sunday Mar March Mar"),
        ("%j %e %-d %_m %0e", "080 20 20  3 20"),
        ("%I %l %p %P", "10 10 PM pm"),
        ("%y %C %G %g", "16 20 2016 16"),
        ("%w %u %U %W %V", "0 7 12 11 11"),
        ("%s", "1458512540"),
        ("%f|%.f|%.3f|%.6f|%.9f|%3f|%6f|%9f", "644420340|.644420340|.644|.644420|.644420340|644|644420|644420340"),
        ("%D|%x|%F|%v|%R|%T|%X|%r", "03/20/16|03/20/16|2016-03-20|20-Mar-2016|22:22|22:22:20|22:22:20|10:22:20 PM"),
        ("%c", "Sun Mar 20 22:22:20 2016"),
        ("100%% %t%n", "100% \t\n"),
        ("%z %:z %::z %:::z", "+0000 +00:00 +00:00:00 +00"),
    ])
    func utcFormats(format: String, expected: String) {
        #expect(self.format(format, utc) == expected)
    }

    @Test func localTimeCarriesItsOffset() {
        #expect(format("%+", pacific) == "2016-03-20T14:22:20.644420340-08:00")
        #expect(format("%z %:z %::z %:::z", pacific) == "-0800 -08:00 -08:00:00 -08")
        // chrono knows a local zone only by its offset.
        #expect(format("%H:%M %Z", pacific) == "14:22 -08:00")
        let india = LogTime(unixSeconds: 1_458_512_540, nanosecond: 0, utcOffset: 19_800, isUTC: false)
        #expect(format("%Y-%m-%d %H:%M:%S %z %a", india) == "2016-03-21 03:52:20 +0530 Mon")
    }

    @Test func fractionDigitsFollowChrono() {
        let whole = LogTime(unixSeconds: 0, nanosecond: 0, utcOffset: 0, isUTC: true)
        let milliseconds = LogTime(unixSeconds: 0, nanosecond: 500_000_000, utcOffset: 0, isUTC: true)
        let microseconds = LogTime(unixSeconds: 0, nanosecond: 1_000, utcOffset: 0, isUTC: true)
        #expect(format("%+", whole) == "1970-01-01T00:00:00+00:00")
        #expect(format("%S%.f", milliseconds) == "00.500")
        #expect(format("%S%.f", microseconds) == "00.000001")
        #expect(format("%.3f %f", microseconds) == ".000 000001000")
    }

    @Test func midnightAndTheISOWeekAroundNewYear() {
        // Friday 2016-01-01 belongs to week 53 of 2015; Monday 2018-12-31 to week 1 of 2019.
        let newYear2016 = LogTime(unixSeconds: 1_451_606_400, nanosecond: 0, utcOffset: 0, isUTC: true)
        #expect(format("%G-W%V-%u %I %l %p %U %W %j", newYear2016) == "2015-W53-5 12 12 AM 00 00 001")
        let lastDay2018 = LogTime(unixSeconds: 1_546_214_400, nanosecond: 0, utcOffset: 0, isUTC: true)
        #expect(format("%G-W%V-%u %j", lastDay2018) == "2019-W01-1 365")
        // 2020-12-31 is a Thursday: 2020 has 53 ISO weeks.
        let lastDay2020 = LogTime(unixSeconds: 1_609_372_800, nanosecond: 0, utcOffset: 0, isUTC: true)
        #expect(format("%G-W%V %j", lastDay2020) == "2020-W53 366")
    }

    @Test func unknownSpecifiersAreCopiedAndReported() {
        let format = StrftimeFormat("%Y %Q %")
        #expect(format.format(utc) == "2016 %Q %")
        #expect(format.unknownSpecifiers == ["%Q", "%"])
    }
}

/// log4rs pattern-encoder patterns.
@Suite struct LogPatternTests {
    private let instant = timespec(tv_sec: 1_458_512_540, tv_nsec: 644_420_340)
    private let record = LogRecord(level: .warning, target: "exar_db", message: "hello there, world",
                                   metadata: ["user": "ann"], file: "Sources/x.swift", line: 42, module: "exar_db")

    private func render(_ pattern: String, _ record: LogRecord? = nil, colors: Bool = false) -> String {
        LogPattern(pattern).render(record ?? self.record, at: instant, colors: colors)
    }

    @Test func theOriginalPatternRenders() {
        let local = StrftimeFormat.iso8601.format(LogTime(instant, utc: false))
        #expect(render("[{d(%+)(local)}] [{h({l})}] [{t}] {m}{n}") == "[\(local)] [WARN] [exar_db] hello there, world\n")
        // `{d}` alone is `%+` in local time; `(utc)` switches the zone.
        #expect(render("{d}") == local)
        #expect(render("{date(%+)(utc)}") == "2016-03-20T22:22:20.644420340+00:00")
        #expect(render("{d(%Y-%m-%d %H:%M:%S%.3f)(utc)} {d(%Z)(utc)}") == "2016-03-20 22:22:20.644 UTC")
        #expect(render(LogPattern.log4rsDefault) == "\(local) WARN exar_db - hello there, world\n")
    }

    @Test func formatSpecsPadAndTruncate() {
        let padding = String(repeating: " ", count: 9)
        #expect(render("[{l:<6}][{l:>6}][{l:*>6}][{m:.5}][{m:>20.11}]") == "[WARN  ][  WARN][**WARN][hello][\(padding)hello there]")
        #expect(render("[{({l} {m}):15.15}]") == "[WARN hello ther]")
        #expect(render("[{({l} {t}):15}]") == "[WARN exar_db   ]")
    }

    @Test func otherFormattersAndEscapes() {
        #expect(render("{f}:{L} {M} {X(user)} {X(missing)(none)} {P}") == "Sources/x.swift:42 exar_db ann none \(getpid())")
        #expect(render("{{x}} \\{y\\} ((z)) a)b") == "{x} {y} (z) a)b")
        #expect(render("{level} {target} {message}") == "WARN exar_db hello there, world")
        #expect(!render("{T}").isEmpty)
    }

    @Test func highlightColoursItsArgumentOnATerminal() {
        #expect(render("{h({l} {t})}", colors: true) == "\u{1B}[31mWARN exar_db\u{1B}[0m")
        #expect(render("{h({l})}") == "WARN")
        var error = record
        error.level = .critical
        #expect(render("{h({l})}", error, colors: true) == "\u{1B}[1;31mERROR\u{1B}[0m")
        var info = record
        info.level = .notice
        #expect(render("{h({l})}", info, colors: true) == "\u{1B}[34mINFO\u{1B}[0m")
        var debug = record
        debug.level = .debug
        #expect(render("{h({l})}", debug, colors: true) == "DEBUG")
    }

    @Test func problemsAreReported() {
        let pattern = LogPattern("{q} {d(%Y %Q)(mars)} {m")
        #expect(pattern.problems.count == 4, "\(pattern.problems)")
        #expect(pattern.render(record, at: instant, colors: false).hasPrefix("{q} "))
        #expect(pattern.render(record, at: instant, colors: false).hasSuffix(" {m"))
    }
}

/// Reading log4rs files: what the original accepted starts the server, warned when ignored.
@Suite struct Log4rsConfigTests {
    @Test func appendIsABoolean() throws {
        let config = try Log4rsConfig.parse("""
            [appenders.kept]
            kind = "file"
            path = "kept.log"
            append = true
            [appenders.fresh]
            kind = "file"
            path = "fresh.log"
            append = false
            [appenders.fresh.encoder]
            kind = "pattern"
            pattern = "{m}{n}"
            [root]
            appenders = ["kept", "fresh"]
            """)
        #expect(config.appenders.map(\.kind) == [.file(path: "kept.log", append: true), .file(path: "fresh.log", append: false)])
        #expect(config.warnings.isEmpty, "\(config.warnings)")
        #expect(throws: ConfigError(key: "appenders.f.append", message: "expected a boolean, got string")) {
            try Log4rsConfig.parse("[appenders.f]\nkind = \"file\"\npath = \"x\"\nappend = \"yes\"")
        }
    }

    @Test func offLogsNothing() throws {
        let config = try Log4rsConfig.parse("[appenders.console]\nkind = \"console\"\n[root]\nlevel = \"off\"")
        #expect(config.level == nil)
        #expect(try config.makeHandlers().isEmpty)
        // A threshold filter of `off` silences one appender.
        let filtered = try Log4rsConfig.parse("""
            [appenders.quiet]
            kind = "console"
            filters = [{ kind = "threshold", level = "off" }]
            [appenders.loud]
            kind = "console"
            filters = [{ kind = "threshold", level = "warn" }]
            [root]
            level = "debug"
            """)
        let handlers = try filtered.makeHandlers()
        #expect(handlers.map(\.logLevel) == [.warning])
    }

    @Test func whatIsNotSupportedIsWarnedAndIgnored() throws {
        let config = try Log4rsConfig.parse("""
            refresh_rate = "30 seconds"
            [appenders.console]
            kind = "console"
            target = "stderr"
            tty_only = false
            filters = [{ kind = "regex", pattern = "x" }]
            [appenders.console.encoder]
            kind = "json"
            [appenders.syslog]
            kind = "syslog"
            facility = "daemon"
            [appenders.file]
            kind = "file"
            path = "$ENV{EXAR_TEST_UNSET_VARIABLE}/x.log"
            colour = true
            [appenders.file.encoder]
            pattern = "{d} {q} {m}{n}"
            [root]
            level = "warn"
            appenders = ["console", "syslog", "file"]
            additive = false
            [loggers.exar_db]
            level = "debug"
            additive = false
            """)
        #expect(config.level == .warning)
        #expect(config.appenders.map(\.name) == ["console", "file"])
        #expect(config.appenders.map(\.kind) == [.console(standardError: true, ttyOnly: false),
                                                 .file(path: "$ENV{EXAR_TEST_UNSET_VARIABLE}/x.log", append: true)])
        let keys = config.warnings.map { String($0.prefix { $0 != ":" }) }
        #expect(keys == ["appenders.console.encoder.kind", "appenders.console.filters[0].kind", "appenders.file.encoder.pattern",
                         "appenders.file.colour", "appenders.syslog.kind", "root.additive", "refresh_rate", "loggers.exar_db"],
                "\(config.warnings)")
        #expect(config.warnings.contains { $0.contains("{q}") })
    }

    @Test func environmentVariablesInPaths() throws {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? "/"
        #expect(Log4rsConfig.expandEnvironment("$ENV{HOME}/a/$ENV{HOME}") == "\(home)/a/\(home)")
        #expect(Log4rsConfig.expandEnvironment("a/$ENV{EXAR_TEST_UNSET_VARIABLE}/$ENV{x") == "a/$ENV{EXAR_TEST_UNSET_VARIABLE}/$ENV{x")
    }

    @Test func rollingFilePolicies() throws {
        let config = try Log4rsConfig.parse("""
            [appenders.window]
            kind = "rolling_file"
            path = "logs/exar.log"
            append = false
            policy = { kind = "compound", trigger = { kind = "size", limit = "10 mb" }, roller = { kind = "fixed_window", pattern = "logs/archive.{}.log", base = 1, count = 5 } }
            [appenders.gone]
            kind = "rolling_file"
            path = "gone.log"
            [appenders.gone.policy]
            trigger = { kind = "size", limit = 4096 }
            roller = { kind = "delete" }
            [appenders.zipped]
            kind = "rolling_file"
            path = "z.log"
            policy = { trigger = { kind = "size", limit = "1KiB" }, roller = { kind = "fixed_window", pattern = "z.{}.log.gz", count = 2 } }
            [appenders.timed]
            kind = "rolling_file"
            path = "t.log"
            policy = { trigger = { kind = "time", interval = "1 day" }, roller = { kind = "delete" } }
            """)
        #expect(config.appenders.map(\.kind) == [
            .rollingFile(path: "gone.log", append: true, policy: RollingPolicy(limit: 4096, roller: .delete)),
            .rollingFile(path: "t.log", append: true, policy: nil),
            .rollingFile(path: "logs/exar.log", append: false, policy: RollingPolicy(
                limit: 10 << 20, roller: .fixedWindow(pattern: "logs/archive.{}.log", base: 1, count: 5, gzip: false))),
            .rollingFile(path: "z.log", append: true, policy: RollingPolicy(
                limit: 1024, roller: .fixedWindow(pattern: "z.{}.log.gz", base: 0, count: 2, gzip: true))),
        ])
        let keys = config.warnings.map { String($0.prefix { $0 != ":" }) }
        #expect(keys == ["appenders.timed.policy.trigger.kind", "appenders.zipped.policy.roller.pattern"], "\(config.warnings)")
    }

    @Test(arguments: [
        ("7", 7), ("7b", 7), ("1kb", 1024), ("1 KiB", 1024), ("10 mb", 10 << 20), ("3MIB", 3 << 20),
        ("2 gb", 2 << 30), ("1 tib", 1 << 40), (" 12 ", 12),
    ])
    func sizeLimitsAsLog4rsReadsThem(text: String, bytes: Int) {
        #expect(RollingPolicy.size(text) == UInt64(bytes))
    }

    @Test func badSizeLimits() {
        for text in ["", "mb", "10 parsecs", "-1", "1.5 mb", "99999999999 tb"] {
            #expect(RollingPolicy.size(text) == nil, "\(text)")
        }
    }

    @Test(arguments: [
        ("[root\nlevel = 1", ""),
        ("[root]\nlevel = \"loud\"", "root.level"),
        ("[root]\nappenders = [\"nowhere\"]", "root.appenders"),
        ("[appenders.f]\nkind = \"file\"", "appenders.f.path"),
        ("[appenders.c]\nkind = \"console\"\ntarget = \"printer\"", "appenders.c.target"),
        ("[appenders.r]\nkind = \"rolling_file\"\npath = \"r.log\"", "appenders.r.policy"),
        ("[appenders.r]\nkind = \"rolling_file\"\npath = \"r.log\"\npolicy = { roller = { kind = \"delete\" } }",
         "appenders.r.policy.trigger"),
        ("[appenders.r]\nkind = \"rolling_file\"\npath = \"r.log\"\npolicy = { trigger = { kind = \"size\", limit = \"10 parsecs\" }, roller = { kind = \"delete\" } }",
         "appenders.r.policy.trigger.limit"),
        ("[appenders.r]\nkind = \"rolling_file\"\npath = \"r.log\"\npolicy = { trigger = { kind = \"size\" }, roller = { kind = \"delete\" } }",
         "appenders.r.policy.trigger.limit"),
        ("[appenders.r]\nkind = \"rolling_file\"\npath = \"r.log\"\npolicy = { trigger = { kind = \"size\", limit = 10 }, roller = { kind = \"fixed_window\", pattern = \"r.log.old\", count = 2 } }",
         "appenders.r.policy.roller.pattern"),
        ("[appenders.r]\nkind = \"rolling_file\"\npath = \"r.log\"\npolicy = { trigger = { kind = \"size\", limit = 10 }, roller = { kind = \"fixed_window\", pattern = \"r.{}\" } }",
         "appenders.r.policy.roller.count"),
        ("[appenders.c]\nkind = \"console\"\nfilters = [{ kind = \"threshold\", level = \"loud\" }]", "appenders.c.filters[0].level"),
    ])
    func invalidFilesStopTheStartNamingTheKey(text: String, key: String) {
        do {
            _ = try Log4rsConfig.parse(text)
            Issue.record("accepted: \(text)")
        } catch let error as ConfigError {
            #expect(error.key == key, "\(error)")
        } catch {
            Issue.record("\(error)")
        }
    }
}
