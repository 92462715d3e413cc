#include "kiln_mpi.h"
#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>

typedef void *handle;  // Open MPI: a pointer to a global; MPICH: an int (passed in a register, so this fits)
static int (*mpi_init)(int *, char ***, int, int *);
static int (*mpi_initialized)(int *);
static int (*mpi_comm_rank)(handle, int *);
static int (*mpi_comm_size)(handle, int *);
static int (*mpi_allreduce)(const void *, void *, int, handle, handle, handle);
static int (*mpi_bcast)(void *, int, handle, int, handle);
static int (*mpi_barrier)(handle);
static int (*mpi_finalize)(void);
static int (*mpi_abort)(handle, int);
static handle world, float_type, double_type, sum_op;
static void *in_place;

int kiln_mpi_load(const char *path, char *error, size_t length) {
    if (mpi_init) return 0;
    const char *names[] = {"libmpi.so.40", "libmpi.so.12", "libmpi.so"};
    void *library = path ? dlopen(path, RTLD_NOW | RTLD_GLOBAL) : NULL;
    for (size_t i = 0; !path && i < sizeof names / sizeof *names && !library; ++i) library = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (!library) {
        if (path) snprintf(error, length, "KILN_MPI_LIBRARY=%s could not be loaded: %s", path, dlerror());
        else snprintf(error, length, "no MPI library (libmpi.so.40 or libmpi.so.12) could be loaded: install Open MPI (Debian: openmpi-bin libopenmpi-dev) or MPICH");
        return 1;
    }
#define RESOLVE(variable, name)                                                                       \
    if (!(*(void **)&variable = dlsym(library, name))) {                                              \
        snprintf(error, length, "the MPI library has no %s", name);                                   \
        return 1;                                                                                     \
    }
    RESOLVE(mpi_initialized, "MPI_Initialized")
    RESOLVE(mpi_comm_rank, "MPI_Comm_rank")
    RESOLVE(mpi_comm_size, "MPI_Comm_size")
    RESOLVE(mpi_allreduce, "MPI_Allreduce")
    RESOLVE(mpi_bcast, "MPI_Bcast")
    RESOLVE(mpi_barrier, "MPI_Barrier")
    RESOLVE(mpi_finalize, "MPI_Finalize")
    RESOLVE(mpi_abort, "MPI_Abort")
    if ((world = dlsym(library, "ompi_mpi_comm_world"))) {  // Open MPI's handles are its globals' addresses
        float_type = dlsym(library, "ompi_mpi_float");
        double_type = dlsym(library, "ompi_mpi_double");
        sum_op = dlsym(library, "ompi_mpi_op_sum");
        in_place = (void *)1;
        if (!float_type || !double_type || !sum_op) {
            snprintf(error, length, "the Open MPI library lacks its datatype or op handles");
            return 1;
        }
    } else {  // MPICH's (and its derivatives') fixed handle values, from its mpi.h
        world = (handle)(intptr_t)0x44000000;
        float_type = (handle)(intptr_t)0x4c00040a;
        double_type = (handle)(intptr_t)0x4c00080b;
        sum_op = (handle)(intptr_t)0x58000003;
        in_place = (void *)(intptr_t)-1;
    }
    RESOLVE(mpi_init, "MPI_Init_thread")
#undef RESOLVE
    return 0;
}

int kiln_mpi_init(int *rank, int *size, int *serialized) {
    int done = 0, provided = 0, status = mpi_initialized(&done);
    if (status == 0 && !done) status = mpi_init(NULL, NULL, 2, &provided);  // 2: MPI_THREAD_SERIALIZED (Open MPI and MPICH)
    *serialized = provided >= 2;
    if (status == 0) status = mpi_comm_rank(world, rank);
    if (status == 0) status = mpi_comm_size(world, size);
    return status;
}

// MPI counts are ints: long arrays go in pieces.
static int allreduce(void *values, size_t count, size_t width, handle type) {
    for (size_t done = 0; done < count;) {
        const size_t piece = count - done < INT_MAX ? count - done : INT_MAX;
        const int status = mpi_allreduce(in_place, (char *)values + done * width, (int)piece, type, sum_op, world);
        if (status != 0) return status;
        done += piece;
    }
    return 0;
}

int kiln_mpi_allreduce_sum_float(float *values, size_t count) { return allreduce(values, count, sizeof(float), float_type); }
int kiln_mpi_allreduce_sum_double(double *values, size_t count) { return allreduce(values, count, sizeof(double), double_type); }

int kiln_mpi_broadcast_float(float *values, size_t count, int root) {
    for (size_t done = 0; done < count;) {
        const size_t piece = count - done < INT_MAX ? count - done : INT_MAX;
        const int status = mpi_bcast(values + done, (int)piece, float_type, root, world);
        if (status != 0) return status;
        done += piece;
    }
    return 0;
}

int kiln_mpi_barrier(void) { return mpi_barrier(world); }
int kiln_mpi_finalize(void) { return mpi_finalize(); }
void kiln_mpi_abort(int code) { mpi_abort(world, code); }
