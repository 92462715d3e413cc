// The few MPI calls data-parallel training needs, bound at run time (dlopen) so that Kiln builds
// and runs where no MPI is installed. Open MPI (libmpi.so.40) and MPICH (libmpi.so.12) both work:
// their handles (communicator, datatype, op) are pointers in one and integers in the other.
#pragma once
#include <stddef.h>

// Loads `library` (NULL: Open MPI's, else MPICH's) and resolves the calls; 0 on success, else
// writes why into `error`.
int kiln_mpi_load(const char *library, char *error, size_t length);
// MPI_Init_thread (once), asking that any one thread at a time may call MPI; then this process's
// rank, the world's size, and whether that was granted. Return MPI error codes (0: success).
int kiln_mpi_init(int *rank, int *size, int *serialized);
// In-place sums over every rank (MPI_Allreduce with MPI_IN_PLACE).
int kiln_mpi_allreduce_sum_float(float *values, size_t count);
int kiln_mpi_allreduce_sum_double(double *values, size_t count);
// Rank root's values to every rank.
int kiln_mpi_broadcast_float(float *values, size_t count, int root);
int kiln_mpi_barrier(void);
int kiln_mpi_finalize(void);
// Ends every rank (MPI_Abort), so that a failing rank does not leave the others waiting.
void kiln_mpi_abort(int code);
