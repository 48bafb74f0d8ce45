/// A user's stable id: `a_…` for an account, `g_…` for a guest.
public struct UserID: RawRepresentable, Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    /// A new id for an account.
    public static func newAccount() -> UserID { UserID(rawValue: "a_" + Token.random(bytes: 12)) }
    /// A new id for a guest: 72 random bits, so that the whole id has 14 characters and Swift
    /// keeps it inline (every connected guest holds it).
    public static func newGuest() -> UserID { UserID(rawValue: "g_" + Token.random(bytes: 9)) }

    public static func < (lhs: UserID, rhs: UserID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }
}

/// Who is talking: an account (by handle) or a guest (by a chosen or generated name).
public struct Identity: Sendable, Hashable, Codable {
    /// Whether the identity has an account.
    public enum Kind: String, Sendable, Hashable, Codable {
        case guest
        case account
    }

    public let id: UserID
    /// The account's handle, or the guest's name.
    public let name: String
    public let kind: Kind

    public init(id: UserID, name: String, kind: Kind) {
        self.id = id
        self.name = name
        self.kind = kind
    }

    public var isAccount: Bool { kind == .account }
}

/// The rules for the names people choose.
public enum Names {
    /// Checks an account handle: 3–32 ASCII letters, digits, `_` or `-`. Returns the handle as
    /// given and its case-insensitive key.
    public static func handle(_ text: String) throws(ChatError) -> (display: String, key: String) {
        let scalars = text.unicodeScalars
        guard (3...32).contains(scalars.count),
              scalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") })
        else {
            throw ChatError(.invalidHandle, "A handle has 3 to 32 characters: letters, digits, _ or -.")
        }
        return (text, text.lowercased())
    }

    /// Checks a guest's chosen name: 1–32 characters once trimmed, no control characters.
    public static func guestName(_ text: String) throws(ChatError) -> String {
        let trimmed = text.trimmingWhitespace
        guard (1...32).contains(trimmed.count),
              !trimmed.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format })
        else {
            throw ChatError(.invalidName, "A name has 1 to 32 characters and no control characters.")
        }
        return trimmed
    }

    /// A name a tutorial client gave, made fit to show and to store: without control or invisible
    /// formatting characters, trimmed, and cut to its first 32 characters. The tutorials' clients
    /// take any name and have no way to hear of a refusal, so their names are mended rather than
    /// refused; the result may be empty.
    public static func tutorialName(_ text: String) -> String {
        var kept = String.UnicodeScalarView()
        kept.append(contentsOf: text.unicodeScalars.lazy.filter { !isControlOrFormat($0) })
        return String(String(kept).trimmingWhitespace.prefix(32))
    }

    /// Checks a room name: 1–100 characters, none of them control or invisible formatting
    /// characters. Room names are taken verbatim and are case-sensitive, as the tutorial clients
    /// that share rooms with everyone expect.
    public static func roomName(_ text: String) throws(ChatError) -> String {
        guard !text.isEmpty, text.hasAtMost(100), !text.unicodeScalars.contains(where: isControlOrFormat) else {
            throw ChatError(.invalidRoomName, "A room name has 1 to 100 characters and no control characters.")
        }
        return text
    }

    /// Whether `scalar` is a control character, an invisible formatting character or a line or
    /// paragraph separator. ASCII, checked on every message's room name, needs no Unicode table.
    static func isControlOrFormat(_ scalar: Unicode.Scalar) -> Bool {
        if scalar.isASCII { return scalar.value < 0x20 || scalar.value == 0x7F }
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator: return true
        default: return false
        }
    }

    private static let adjectives = [
        "brave", "calm", "clever", "cosy", "curious", "daring", "eager", "fancy", "gentle", "glad", "happy", "jolly",
        "keen", "kind", "lively", "lucky", "merry", "mighty", "nimble", "noble", "patient", "plucky", "proud", "quick",
        "quiet", "rapid", "sunny", "swift", "tidy", "witty", "wise", "zesty",
    ]
    private static let animals = [
        "badger", "beaver", "bison", "crane", "dolphin", "eagle", "falcon", "ferret", "finch", "fox", "gecko", "heron",
        "ibis", "koala", "lemur", "lynx", "marten", "moose", "newt", "otter", "owl", "panda", "puffin", "quail", "raven",
        "seal", "stoat", "swan", "tapir", "toucan", "walrus", "yak",
    ]

    /// A readable generated name such as `brave-otter`.
    public static func generatedGuestName() -> String {
        var generator = SystemRandomNumberGenerator()
        return "\(adjectives.randomElement(using: &generator)!)-\(animals.randomElement(using: &generator)!)"
    }
}

extension String {
    /// Whether the string has at most `limit` characters. Every character takes at least one
    /// UTF-8 byte, so the characters are counted (a walk over the whole string) only when the
    /// string has more bytes than that.
    public func hasAtMost(_ limit: Int) -> Bool {
        utf8.count <= limit || count <= limit
    }

    /// Whether the string is empty or only whitespace. ASCII, the usual first character of a
    /// message, needs no Unicode table: its whitespace is tab to carriage return, and space.
    public var isBlank: Bool {
        unicodeScalars.allSatisfy { $0.isASCII ? $0.value == 0x20 || (0x09...0x0D).contains($0.value) : $0.properties.isWhitespace }
    }

    /// The string without leading and trailing whitespace.
    public var trimmingWhitespace: String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[start...end])
    }
}
