#if canImport(Glibc)
import Glibc
#endif

/// A moment split into calendar fields, in UTC or in the local time zone.
struct LogTime: Sendable, Equatable {
    var year: Int
    /// 1...12
    var month: Int
    /// 1...31
    var day: Int
    var hour: Int
    var minute: Int
    var second: Int
    var nanosecond: Int
    /// 0 (Sunday) ... 6
    var weekday: Int
    /// 1...366
    var dayOfYear: Int
    /// Seconds east of UTC.
    var utcOffset: Int
    /// Whether the time is UTC (chrono's `Utc`: `%Z` prints `UTC`) rather than local.
    var isUTC: Bool
    /// Seconds since 1970-01-01 UTC.
    var unixSeconds: Int

    /// The fields of `unixSeconds` shifted by `utcOffset` seconds (UTC when `isUTC`).
    init(unixSeconds: Int, nanosecond: Int, utcOffset: Int, isUTC: Bool) {
        var shifted = time_t(unixSeconds + utcOffset)
        var fields = tm()
        gmtime_r(&shifted, &fields)
        year = Int(fields.tm_year) + 1900
        month = Int(fields.tm_mon) + 1
        day = Int(fields.tm_mday)
        hour = Int(fields.tm_hour)
        minute = Int(fields.tm_min)
        second = Int(fields.tm_sec)
        weekday = Int(fields.tm_wday)
        dayOfYear = Int(fields.tm_yday) + 1
        self.nanosecond = nanosecond
        self.utcOffset = utcOffset
        self.isUTC = isUTC
        self.unixSeconds = unixSeconds
    }

    /// The moment `instant` (`CLOCK_REALTIME`), in local time (with the zone's offset then) or UTC.
    init(_ instant: timespec, utc: Bool) {
        var offset = 0
        if !utc {
            var seconds = instant.tv_sec
            var local = tm()
            localtime_r(&seconds, &local)
            offset = Int(local.tm_gmtoff)
        }
        self.init(unixSeconds: Int(instant.tv_sec), nanosecond: Int(instant.tv_nsec), utcOffset: offset, isUTC: utc)
    }
}

/// A chrono `strftime` format, as log4rs's `{d(<format>)}` takes it, compiled once.
///
/// Supported: `%Y %C %y %m %b %h %B %d %e %a %A %w %u %U %W %G %g %V %j %D %x %F %v %H %k %I %l %P %p
/// %M %S %f %.f %.3f %.6f %.9f %3f %6f %9f %R %T %X %r %c %+ %s %z %:z %::z %:::z %Z %t %n %%`, and the
/// padding modifiers `%-d` (none), `%_d` (spaces), `%0e` (zeros) on numbers. English names, as chrono.
struct StrftimeFormat: Sendable, Equatable {
    enum Padding: Sendable, Equatable { case zero, space, none }

    enum Item: Sendable, Equatable {
        case literal(String)
        /// A number of at least `width` digits.
        case number(Field, width: Int, padding: Padding)
        case monthName(short: Bool)
        case weekdayName(short: Bool)
        case amPM(upper: Bool)
        /// Nanoseconds as `digits` digits (0: 3, 6 or 9 as needed, nothing when zero), after a dot when `dot`.
        case fraction(digits: Int, dot: Bool)
        /// The UTC offset: `colons` 0 `+hhmm`, 1 `+hh:mm`, 2 `+hh:mm:ss`, 3 `+hh`.
        case offset(colons: Int)
        case zoneName
    }

    enum Field: Sendable, Equatable {
        case year, century, yearOfCentury, month, day, hour, hour12, minute, second, dayOfYear
        case weekdayFromSunday, weekdayFromMonday, weekOfYearSunday, weekOfYearMonday
        case isoYear, isoYearOfCentury, isoWeek, unixSeconds
    }

    let items: [Item]
    /// The specifiers that are not chrono's (copied to the output as written).
    let unknownSpecifiers: [String]

    /// chrono's `%+`: ISO 8601 / RFC 3339 with as many fraction digits as needed and the offset.
    static let iso8601 = StrftimeFormat("%+")

    init(_ format: String) {
        var items: [Item] = []
        var unknown: [String] = []
        let characters = Array(format)
        var index = 0
        var text = ""
        func flush() {
            if !text.isEmpty { items.append(.literal(text)); text = "" }
        }
        while index < characters.count {
            guard characters[index] == "%" else {
                text.append(characters[index])
                index += 1
                continue
            }
            let start = index
            index += 1
            var padding: Padding?
            if index < characters.count, let modifier = Self.paddings[characters[index]] {
                padding = modifier
                index += 1
            }
            // Fraction and offset specifiers are longer than one character.
            var spec = ""
            while index < characters.count, characters[index] == "." || characters[index] == ":" || characters[index].isNumber {
                spec.append(characters[index])
                index += 1
            }
            guard index < characters.count else {
                unknown.append(String(characters[start...]))
                text += String(characters[start...])
                break
            }
            spec.append(characters[index])
            index += 1
            guard let expansion = Self.expand(spec, padding: padding) else {
                let written = String(characters[start..<index])
                unknown.append(written)
                text += written
                continue
            }
            flush()
            items += expansion
        }
        flush()
        self.items = items
        unknownSpecifiers = unknown
    }

    private static let paddings: [Character: Padding] = ["-": .none, "_": .space, "0": .zero]

    private static func expand(_ spec: String, padding: Padding?) -> [Item]? {
        func number(_ field: Field, _ width: Int, _ natural: Padding = .zero) -> [Item] {
            [.number(field, width: width, padding: padding ?? natural)]
        }
        switch spec {
        case "Y": return number(.year, 4)
        case "C": return number(.century, 2)
        case "y": return number(.yearOfCentury, 2)
        case "m": return number(.month, 2)
        case "b", "h": return [.monthName(short: true)]
        case "B": return [.monthName(short: false)]
        case "d": return number(.day, 2)
        case "e": return number(.day, 2, .space)
        case "a": return [.weekdayName(short: true)]
        case "A": return [.weekdayName(short: false)]
        case "w": return number(.weekdayFromSunday, 1)
        case "u": return number(.weekdayFromMonday, 1)
        case "U": return number(.weekOfYearSunday, 2)
        case "W": return number(.weekOfYearMonday, 2)
        case "G": return number(.isoYear, 4)
        case "g": return number(.isoYearOfCentury, 2)
        case "V": return number(.isoWeek, 2)
        case "j": return number(.dayOfYear, 3)
        case "H": return number(.hour, 2)
        case "k": return number(.hour, 2, .space)
        case "I": return number(.hour12, 2)
        case "l": return number(.hour12, 2, .space)
        case "M": return number(.minute, 2)
        case "S": return number(.second, 2)
        case "s": return number(.unixSeconds, 1)
        case "P": return [.amPM(upper: false)]
        case "p": return [.amPM(upper: true)]
        case "f": return [.fraction(digits: 9, dot: false)]
        case ".f": return [.fraction(digits: 0, dot: true)]
        case ".3f", ".6f", ".9f": return [.fraction(digits: Int(String(spec.dropFirst().first!))!, dot: true)]
        case "3f", "6f", "9f": return [.fraction(digits: Int(String(spec.first!))!, dot: false)]
        case "z": return [.offset(colons: 0)]
        case ":z": return [.offset(colons: 1)]
        case "::z": return [.offset(colons: 2)]
        case ":::z": return [.offset(colons: 3)]
        case "Z": return [.zoneName]
        case "t": return [.literal("\t")]
        case "n": return [.literal("\n")]
        case "%": return [.literal("%")]
        case "D", "x": return StrftimeFormat("%m/%d/%y").items
        case "F": return StrftimeFormat("%Y-%m-%d").items
        case "v": return StrftimeFormat("%e-%b-%Y").items
        case "R": return StrftimeFormat("%H:%M").items
        case "T", "X": return StrftimeFormat("%H:%M:%S").items
        case "r": return StrftimeFormat("%I:%M:%S %p").items
        case "c": return StrftimeFormat("%a %b %e %H:%M:%S %Y").items
        case "+": return StrftimeFormat("%Y-%m-%dT%H:%M:%S%.f%:z").items
        default: return nil
        }
    }

    private static let monthNames = ["January", "February", "March", "April", "May", "June", "July", "August",
                                      "September", "October", "November", "December"]
    private static let weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    func format(_ time: LogTime) -> String {
        var out = ""
        for item in items {
            switch item {
            case .literal(let text): out += text
            case .number(let field, let width, let padding):
                Self.append(Self.value(field, of: time), width: width, padding: padding, to: &out)
            case .monthName(let short):
                let name = Self.monthNames[time.month - 1]
                out += short ? String(name.prefix(3)) : name
            case .weekdayName(let short):
                let name = Self.weekdayNames[time.weekday]
                out += short ? String(name.prefix(3)) : name
            case .amPM(let upper): out += time.hour < 12 ? (upper ? "AM" : "am") : (upper ? "PM" : "pm")
            case .fraction(let digits, let dot): Self.appendFraction(time.nanosecond, digits: digits, dot: dot, to: &out)
            case .offset(let colons): Self.appendOffset(time.utcOffset, colons: colons, to: &out)
            case .zoneName:
                // chrono knows zones only by their offsets: `UTC` for UTC, `+hh:mm` for local time.
                if time.isUTC { out += "UTC" } else { Self.appendOffset(time.utcOffset, colons: 1, to: &out) }
            }
        }
        return out
    }

    private static func value(_ field: Field, of time: LogTime) -> Int {
        // Days since Monday, 0...6.
        let fromMonday = (time.weekday + 6) % 7
        switch field {
        case .year: return time.year
        case .century: return floorDivide(time.year, 100)
        case .yearOfCentury: return modulo(time.year, 100)
        case .month: return time.month
        case .day: return time.day
        case .hour: return time.hour
        case .hour12: return time.hour % 12 == 0 ? 12 : time.hour % 12
        case .minute: return time.minute
        case .second: return time.second
        case .dayOfYear: return time.dayOfYear
        case .weekdayFromSunday: return time.weekday
        case .weekdayFromMonday: return fromMonday + 1
        case .weekOfYearSunday: return (time.dayOfYear - 1 + 7 - time.weekday) / 7
        case .weekOfYearMonday: return (time.dayOfYear - 1 + 7 - fromMonday) / 7
        case .isoYear: return isoWeek(time).year
        case .isoYearOfCentury: return modulo(isoWeek(time).year, 100)
        case .isoWeek: return isoWeek(time).week
        case .unixSeconds: return time.unixSeconds
        }
    }

    /// The ISO 8601 week-numbering year and week (weeks start on Monday; week 1 holds the first Thursday).
    static func isoWeek(_ time: LogTime) -> (year: Int, week: Int) {
        let isoWeekday = (time.weekday + 6) % 7 + 1
        let week = (time.dayOfYear - isoWeekday + 10) / 7
        if week < 1 { return (time.year - 1, weeksInISOYear(time.year - 1)) }
        if week > weeksInISOYear(time.year) { return (time.year + 1, 1) }
        return (time.year, week)
    }

    private static func weeksInISOYear(_ year: Int) -> Int {
        // The weekday of December 31 (0 Sunday), from the Gregorian rule.
        func lastDayWeekday(_ y: Int) -> Int { modulo(y + floorDivide(y, 4) - floorDivide(y, 100) + floorDivide(y, 400), 7) }
        return lastDayWeekday(year) == 4 || lastDayWeekday(year - 1) == 3 ? 53 : 52
    }

    private static func floorDivide(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
    private static func modulo(_ a: Int, _ b: Int) -> Int { ((a % b) + b) % b }

    private static func append(_ value: Int, width: Int, padding: Padding, to out: inout String) {
        let digits = String(abs(value))
        if value < 0 { out += "-" }
        if digits.count < width && padding != .none {
            out += String(repeating: padding == .zero ? "0" : " ", count: width - digits.count)
        }
        out += digits
    }

    private static func appendFraction(_ nanosecond: Int, digits: Int, dot: Bool, to out: inout String) {
        var count = digits
        if count == 0 {
            guard nanosecond != 0 else { return }
            count = nanosecond % 1_000_000 == 0 ? 3 : nanosecond % 1000 == 0 ? 6 : 9
        }
        var divisor = 1
        for _ in 0..<(9 - count) { divisor *= 10 }
        if dot { out += "." }
        append(nanosecond / divisor, width: count, padding: .zero, to: &out)
    }

    private static func appendOffset(_ offset: Int, colons: Int, to out: inout String) {
        let magnitude = abs(offset)
        out += offset < 0 ? "-" : "+"
        append(magnitude / 3600, width: 2, padding: .zero, to: &out)
        guard colons != 3 else { return }
        if colons > 0 { out += ":" }
        append(magnitude % 3600 / 60, width: 2, padding: .zero, to: &out)
        if colons == 2 {
            out += ":"
            append(magnitude % 60, width: 2, padding: .zero, to: &out)
        }
    }
}
