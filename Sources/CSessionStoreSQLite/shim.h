#ifndef C_SESSION_STORE_SQLITE_SHIM_H
#define C_SESSION_STORE_SQLITE_SHIM_H

#include <sqlite3.h>

/// Non-variadic wrapper of sqlite3_db_config for options taking (int, int*).
static inline int csessionstore_sqlite3_db_config_int(sqlite3 *db, int option, int value, int *result) {
    return sqlite3_db_config(db, option, value, result);
}

#endif
