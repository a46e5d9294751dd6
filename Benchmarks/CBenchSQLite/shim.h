#ifndef C_BENCH_SQLITE_SHIM_H
#define C_BENCH_SQLITE_SHIM_H

/* The raw SQLite floor of the benchmark calls the C API directly, not through the library. */
#include <sqlite3.h>

#endif
