#ifndef CSESSIONSTOREMARIADB_SHIM_H
#define CSESSIONSTOREMARIADB_SHIM_H

#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

#ifdef __linux__
// The MySQL backend's event loop (MySQLEventLoop.swift); Glibc's Swift module has neither.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif

/// Sets a boolean option (my_bool), which Swift cannot pass through the void* API directly.
static inline int cssm_set_bool_option(MYSQL *mysql, enum mysql_option option, int value) {
    my_bool flag = value ? 1 : 0;
    return mysql_options(mysql, option, &flag);
}

/// Sets an unsigned int option.
static inline int cssm_set_uint_option(MYSQL *mysql, enum mysql_option option, unsigned int value) {
    return mysql_options(mysql, option, &value);
}

/// Sets a string option.
static inline int cssm_set_string_option(MYSQL *mysql, enum mysql_option option, const char *value) {
    return mysql_options(mysql, option, value);
}

/// Sets STMT_ATTR_UPDATE_MAX_LENGTH off-default values without my_bool in Swift.
static inline int cssm_stmt_attr_bool(MYSQL_STMT *stmt, enum enum_stmt_attr_type attr, int value) {
    my_bool flag = value ? 1 : 0;
    return mysql_stmt_attr_set(stmt, attr, &flag);
}

#endif
