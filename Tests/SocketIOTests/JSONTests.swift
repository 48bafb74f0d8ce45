import NIOCore
import Testing

@testable import SocketIO

@Suite("JSON values")
struct JSONTests {
    @Test func parsesEveryKind() throws {
        let value = try JSONValue(parsing: #" {"a":[1,-2.5,3e2,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"],"b":{}} "#)
        #expect(value == [
            "a": [1, -2.5, 300, true, false, nil, "x\"\\/\u{8}\u{c}\n\r\té😀"],
            "b": .object(JSONObject()),
        ])
    }

    @Test func writesCompactJSONKeepingKeyOrder() throws {
        let value: JSONValue = ["z": 1, "a": [true, nil, "q\"\n\u{1}"], "m": 2.5, "big": 1e21]
        #expect(value.json == #"{"z":1,"a":[true,null,"q\"\n\u0001"],"m":2.5,"big":1e+21}"#)
        #expect(try JSONValue(parsing: value.json) == value)
    }

    @Test func duplicateKeysKeepTheLastValue() throws {
        let value = try JSONValue(parsing: #"{"a":1,"a":2}"#)
        #expect(value["a"] == 2)
        #expect(value.objectValue?.count == 1)
    }

    @Test("malformed JSON is refused", arguments: [
        "", " ", "{", "}", "[1,]", "[1 2]", "{\"a\"}", "{\"a\":}", "{a:1}", "'x'", "\"abc", "01", "1.", ".5", "-", "1e",
        "tru", "nul", "[1]x", "\"\u{1}\"", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00x\"", "NaN", "Infinity",
    ])
    func malformed(text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: text) }
    }

    @Test func deepNestingIsRefusedNotCrashing() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue(parsing: deep) }
        let ok = String(repeating: "[", count: JSONValue.maximumDepth) + String(repeating: "]", count: JSONValue.maximumDepth)
        #expect(throws: Never.self) { try JSONValue(parsing: ok) }
    }

    @Test func accessors() {
        let value: JSONValue = ["n": 3, "f": 3.5, "s": "x", "b": true]
        #expect(value["n"]?.intValue == 3)
        #expect(value["f"]?.intValue == nil)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["b"]?.boolValue == true)
        #expect(value["missing"] == nil)
        #expect(JSONValue.binary(ByteBuffer(bytes: [1])).containsBinary)
        #expect(JSONValue.array([["k": .binary(ByteBuffer())]]).containsBinary)
        #expect(!value.containsBinary)
    }

    @Test func objectEditing() {
        var object: JSONObject = ["a": 1, "b": 2]
        object["a"] = 3
        object["c"] = 4
        object["b"] = nil
        #expect(object.keys == ["a", "c"])
        #expect(JSONValue.object(object).json == #"{"a":3,"c":4}"#)
    }
}
