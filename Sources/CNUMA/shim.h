#ifndef SWITCHYARD_CNUMA_SHIM_H
#define SWITCHYARD_CNUMA_SHIM_H
#include <numa.h>
#include <numaif.h>
/* glibc declares this only under _GNU_SOURCE, which Swift's Glibc module does not set. */
extern int sched_getcpu(void);
#endif
