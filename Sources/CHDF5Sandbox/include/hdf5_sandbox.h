// The one libhdf5 read that damaged files break: a variable-length string attribute, whose
// global-heap lookup trusts the file (a fuzzed Keras .h5 made it crash or loop). It runs in a
// child process, so a crash or a loop there costs the child, not the caller.
#ifndef KILN_HDF5_SANDBOX_H
#define KILN_HDF5_SANDBOX_H
#include <stddef.h>

enum { KILN_H5_OK = 0, KILN_H5_ERROR = -1, KILN_H5_CRASHED = -2, KILN_H5_TIMED_OUT = -3, KILN_H5_NO_CHILD = -4 };

// Opens `path` afresh in a child process and reads attribute `attribute` of `object`, `count`
// variable-length strings. On KILN_H5_OK, `*out` (free it) holds them, each followed by a NUL byte,
// in `*length` bytes. The child gets `timeout` seconds.
int kiln_h5_read_vlen_strings(const char *path, const char *object, const char *attribute, long count, double timeout,
                              char **out, size_t *length);
#endif
