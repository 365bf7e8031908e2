#ifndef SWITCHYARD_CMPI_SHIM_H
#define SWITCHYARD_CMPI_SHIM_H
#include <mpi.h>
#include <sched.h>
/* MPICH macros Swift cannot import (pointer casts and MPI_Op handles), as functions. */
static inline void *cmpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *cmpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Op cmpi_op_sum(void) { return MPI_SUM; }
static inline MPI_Op cmpi_op_max(void) { return MPI_MAX; }
static inline MPI_Op cmpi_op_min(void) { return MPI_MIN; }
static inline MPI_Errhandler cmpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int cmpi_yield(void) { return sched_yield(); }
#endif
