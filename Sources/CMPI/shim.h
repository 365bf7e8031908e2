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

/* Process control for a rank's witness (SwiftMPI/Witness.swift): ptrace and prctl are variadic in C. */
#include <sys/ptrace.h>
#include <sys/prctl.h>
#include <sys/wait.h>
static inline int cmpi_ptrace_seize(int pid) { return (int)ptrace(PTRACE_SEIZE, pid, 0, 0); }
static inline int cmpi_ptrace_cont(int pid, int sig) { return (int)ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig); }
static inline int cmpi_ptrace_listen(int pid) { return (int)ptrace(PTRACE_LISTEN, pid, 0, 0); }
static inline int cmpi_ptrace_event_stop(void) { return PTRACE_EVENT_STOP; }
static inline int cmpi_allow_ptracer(int pid) { return prctl(PR_SET_PTRACER, (unsigned long)pid, 0, 0, 0); }
static inline int cmpi_wait_all_threads(void) { return __WALL; }

/* The calling thread's id (SwiftMPI/Finalize.swift looks at its finalize thread in /proc). */
#include <sys/syscall.h>
#include <unistd.h>
static inline long cmpi_gettid(void) { return syscall(SYS_gettid); }
#endif
