#ifndef C_CALLGRIND_H
#define C_CALLGRIND_H

/* Callgrind's client requests (no-ops outside valgrind), as functions Swift can call. */

/// Zeroes every thread's counters: what ran before is not counted.
void hot_path_callgrind_zero(void);

/// Writes the counters since the last zero to a dump file named after `reason`.
void hot_path_callgrind_dump(const char *reason);

/// Whether the process runs under valgrind.
int hot_path_running_on_valgrind(void);

#endif
