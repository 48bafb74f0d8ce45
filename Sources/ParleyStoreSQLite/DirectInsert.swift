import Foundation
import GRDB
import GRDBSQLite

/// Runs one of the writer's prepared inserts with its values bound through SQLite's C API.
///
/// GRDB's `execute(arguments:)` boxes each value, checks the arguments against the statement
/// and reports the execution to its observers: under load that was a quarter of the writer
/// thread's time, nearly as much as SQLite's own work on the row (benchmarks/README.md, "The
/// writer binds a message's values through SQLite's C API"). The statements stay GRDB's,
/// prepared and cached by it; GRDB resets a statement before each of its own executions, so the
/// two kinds of use can mix.
struct DirectInsert {
    private let handle: SQLiteStatement
    private var index: CInt = 0

    /// Binds what `bind` binds, every parameter in order, and steps the statement to its end;
    /// throws SQLite's error, with the statement's text. The values are SQLite's copies, so the
    /// bindings may stay until the next execution replaces them.
    static func run(_ statement: Statement, in db: Database, bind: (inout DirectInsert) -> Void) throws {
        let handle = statement.sqliteStatement
        sqlite3_reset(handle)
        var binder = DirectInsert(handle: handle)
        bind(&binder)
        let code = sqlite3_step(handle)
        sqlite3_reset(handle)
        guard code == SQLITE_DONE else {
            throw DatabaseError(
                resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: statement.sql
            )
        }
    }

    private init(handle: SQLiteStatement) { self.handle = handle }

    /// SQLite copies the bytes before the call returns.
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
    /// A valid pointer for an empty blob: a null one would bind NULL.
    private static let empty: StaticString = ""

    /// The next parameter is `text`, up to a NUL if it holds one, as GRDB binds it.
    mutating func text(_ text: String) {
        index += 1
        // Not `text` as the argument: that bridging copies it into a new array first.
        _ = text.withCString { sqlite3_bind_text(handle, index, $0, -1, Self.transient) }
    }

    /// The next parameter is `text`, or NULL.
    mutating func text(_ text: String?) {
        if let text { self.text(text) } else { null() }
    }

    /// The next parameter is `value`.
    mutating func integer(_ value: Int64) {
        index += 1
        _ = sqlite3_bind_int64(handle, index, value)
    }

    /// The next parameter is `data`, or NULL.
    mutating func blob(_ data: Data?) {
        guard let data else { return null() }
        index += 1
        data.withUnsafeBytes { bytes in
            _ = sqlite3_bind_blob(handle, index, bytes.baseAddress ?? UnsafeRawPointer(Self.empty.utf8Start), CInt(bytes.count), Self.transient)
        }
    }

    /// The next parameter is NULL.
    mutating func null() {
        index += 1
        _ = sqlite3_bind_null(handle, index)
    }
}
