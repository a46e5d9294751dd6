#ifndef C_BENCH_MARIADB_SHIM_H
#define C_BENCH_MARIADB_SHIM_H

/* The raw MySQL floor of the benchmark calls MariaDB Connector/C directly. */
#include <mysql.h>

/// Sets a boolean option (my_bool), which Swift cannot pass through the void* API directly.
static inline int bench_set_bool_option(MYSQL *mysql, enum mysql_option option, int value) {
    my_bool flag = value ? 1 : 0;
    return mysql_options(mysql, option, &flag);
}

/// Sets an unsigned int option.
static inline int bench_set_uint_option(MYSQL *mysql, enum mysql_option option, unsigned int value) {
    return mysql_options(mysql, option, &value);
}

/// Sets a string option.
static inline int bench_set_string_option(MYSQL *mysql, enum mysql_option option, const char *value) {
    return mysql_options(mysql, option, value);
}

#endif
