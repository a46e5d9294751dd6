#include "ccallgrind.h"
#include <valgrind/callgrind.h>

void hot_path_callgrind_zero(void) {
    CALLGRIND_ZERO_STATS;
}

void hot_path_callgrind_dump(const char *reason) {
    CALLGRIND_DUMP_STATS_AT(reason);
}

int hot_path_running_on_valgrind(void) {
    return RUNNING_ON_VALGRIND ? 1 : 0;
}
