#ifndef C_BENCH_LIBPQ_SHIM_H
#define C_BENCH_LIBPQ_SHIM_H

/* The PostgreSQL floor of the benchmark: libpq's prepared statements, called directly. */
#include <libpq-fe.h>

#endif
