/* The sink of debug prints (core/print_sink.c; set by jx_set_print_sink). */
#ifndef JX_PRINT_SINK_H
#define JX_PRINT_SINK_H

#include "jx.h"

/* Hand one formatted line (no newline) to the sink. */
void jx_print_emit(const char *line);

#endif
