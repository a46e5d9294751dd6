import CSessionStoreSQLite
import SessionStoreCore

/// A session key's slot: the 64-bit rowid its row has in a version 2 table.
///
/// A `WITHOUT ROWID` table (version 1) keeps whole rows in its interior pages, so with
/// ~270-byte sessions a page holds about 14 of them: 1M rows had 5,483 interior pages
/// (22 MB, far past a connection's 2 MB page cache), and every lookup read pages that were
/// not cached. A rowid table keeps only integers there: 331 interior pages for the same
/// rows, so a lookup reads one uncached page, its leaf. The id stays a column and every
/// statement matches both, so two keys that share a slot never see each other's row.
///
/// The function is part of the file format: it never changes for a table once written.
/// It mixes the key's UTF-8 bytes, 8 at a time (little-endian, the last word padded with
/// zeros) after the length, with SplitMix64's finalizer (Steele, Lea and Flood, "Fast
/// splittable pseudorandom number generators", 2014), a bijection whose output bits each
/// depend on every input bit.
enum SQLiteSlot {
    /// The SQL function that computes a slot, registered on the writer connection for
    /// migrations and checks: `session_store_slot(id)`.
    static let functionName = "session_store_slot"

    /// The slot of `key`.
    static func of(_ key: SessionKey) -> Int64 {
        if let slot = key.value.utf8.withContiguousStorageIfAvailable({ of(UnsafeRawBufferPointer($0)) }) {
            return slot
        }
        var text = key.value  // a bridged or foreign string: made contiguous once
        return text.withUTF8 { of(UnsafeRawBufferPointer($0)) }
    }

    /// The slot of the key whose UTF-8 bytes are `bytes`.
    static func of(_ bytes: UnsafeRawBufferPointer) -> Int64 {
        var hash = mix(UInt64(bytes.count) &+ 0x9E37_79B9_7F4A_7C15)
        var offset = 0
        while offset < bytes.count {
            var word: UInt64 = 0
            let take = min(8, bytes.count - offset)
            if take == 8 {
                word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            } else {
                for index in 0..<take {
                    word |= UInt64(bytes[offset + index]) << (8 * UInt64(index))
                }
            }
            hash = mix((hash ^ word) &+ 0x9E37_79B9_7F4A_7C15)
            offset += take
        }
        return Int64(bitPattern: hash)
    }

    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Registers ``functionName`` on `connection`: the slot of a text or blob argument (its
    /// bytes), NULL for NULL; a number is taken as its text, as SQLite would store it in a
    /// TEXT column.
    static func register(on connection: SQLiteConnection) throws(StorageError) {
        let code = sqlite3_create_function_v2(
            connection.database, functionName, 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, nil,
            { context, _, arguments in
                guard let argument = arguments?[0] else { return }
                let type = sqlite3_value_type(argument)
                if type == SQLITE_NULL {
                    sqlite3_result_null(context)
                    return
                }
                let start = type == SQLITE_BLOB ? sqlite3_value_blob(argument) : UnsafeRawPointer(sqlite3_value_text(argument))
                let count = Int(sqlite3_value_bytes(argument))
                guard let start else {
                    // An empty blob has no pointer; anything else without one ran out of memory.
                    if count == 0 && type == SQLITE_BLOB {
                        sqlite3_result_int64(context, SQLiteSlot.of(UnsafeRawBufferPointer(start: nil, count: 0)))
                    } else {
                        sqlite3_result_error_nomem(context)
                    }
                    return
                }
                sqlite3_result_int64(context, SQLiteSlot.of(UnsafeRawBufferPointer(start: start, count: count)))
            }, nil, nil, nil)
        guard code == SQLITE_OK else {
            throw StorageError(
                kind: .other, engine: "sqlite", operation: "open", code: code,
                message: "could not register \(functionName): \(String(cString: sqlite3_errstr(code)))")
        }
    }
}
