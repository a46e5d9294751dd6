#ifndef C_SESSION_STORE_SQLITE_SHIM_H
#define C_SESSION_STORE_SQLITE_SHIM_H

#include <sqlite3.h>

/// Non-variadic wrapper of sqlite3_db_config for options taking (int, int*).
static inline int csessionstore_sqlite3_db_config_int(sqlite3 *db, int option, int value, int *result) {
    return sqlite3_db_config(db, option, value, result);
}

/// Flushes a file the connection has open for "main" to disk through SQLite's own VFS, as a
/// checkpoint's sync does: the database file (SQLITE_FCNTL_FILE_POINTER) or its WAL
/// (SQLITE_FCNTL_JOURNAL_POINTER). SQLITE_OK when the file is not open (nothing to flush).
static inline int csessionstore_sqlite3_sync_file(sqlite3 *db, int op, int flags) {
    sqlite3_file *file = 0;
    int rc = sqlite3_file_control(db, "main", op, &file);
    if (rc != SQLITE_OK) return rc;
    if (file == 0 || file->pMethods == 0 || file->pMethods->xSync == 0) return SQLITE_OK;
    return file->pMethods->xSync(file, flags);
}

#endif
