import NIOCore

/// A Socket.IO argument: any JSON value, or a binary attachment.
///
/// Objects keep the order of their keys, so a payload is written back exactly as built.
/// ``binary(_:)`` values travel as separate Engine.IO binary packets, with a placeholder in
/// the JSON (``SocketIOPacket`` does that).
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
    /// Binary data: an attachment of a binary event or ack.
    case binary(ByteBuffer)

    /// The string, if this is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number, if this is a number.
    public var numberValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The number as an integer, if this is a number with no fraction.
    public var intValue: Int? {
        if case .number(let value) = self, value.rounded() == value, abs(value) < 9.007199254740992e15 { return Int(value) }
        return nil
    }

    /// The boolean, if this is a boolean.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The elements, if this is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The object, if this is an object.
    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The bytes, if this is binary.
    public var binaryValue: ByteBuffer? {
        if case .binary(let value) = self { return value }
        return nil
    }

    /// Whether this is `null`.
    public var isNull: Bool { self == .null }

    /// The member `key` of an object (`nil` for other values or a missing key).
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// Whether this value or any value inside it is binary.
    public var containsBinary: Bool {
        switch self {
        case .binary: true
        case .array(let values): values.contains { $0.containsBinary }
        case .object(let object): object.values.contains { $0.containsBinary }
        default: false
        }
    }
}

/// A JSON object whose keys keep their order. Setting an existing key replaces its value in
/// place; a key appears at most once.
public struct JSONObject: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var keys: [String] = []
    public private(set) var values: [JSONValue] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        reserveCapacity(elements.count)
        for (key, value) in elements { self[key] = value }
    }

    /// The number of members.
    public var count: Int { keys.count }

    /// Makes room for `count` members without reallocating.
    public mutating func reserveCapacity(_ count: Int) {
        keys.reserveCapacity(count)
        values.reserveCapacity(count)
    }

    public subscript(key: String) -> JSONValue? {
        get { keys.firstIndex(of: key).map { values[$0] } }
        set {
            if let index = keys.firstIndex(of: key) {
                if let newValue { values[index] = newValue } else {
                    keys.remove(at: index)
                    values.remove(at: index)
                }
            } else if let newValue {
                keys.append(key)
                values.append(newValue)
            }
        }
    }

    public func makeIterator() -> Zip2Sequence<[String], [JSONValue]>.Iterator {
        zip(keys, values).makeIterator()
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        object.reserveCapacity(elements.count)
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: CustomStringConvertible {
    /// The JSON text (binary shown as `<binary N bytes>`).
    public var description: String {
        if containsBinary {
            switch self {
            case .binary(let bytes): return "<binary \(bytes.readableBytes) bytes>"
            case .array(let values): return "[" + values.map(\.description).joined(separator: ",") + "]"
            case .object(let object): return "{" + object.map { "\(JSONValue.string($0.0).json):\($0.1.description)" }.joined(separator: ",") + "}"
            default: break
            }
        }
        return json
    }
}
