// libhdf5 (Debian libhdf5-dev, serial build). Its type constants are macros Swift cannot import,
// so they are wrapped in inline functions.
#include <hdf5/serial/hdf5.h>

static inline hid_t kiln_h5_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t kiln_h5_c_string(void) { return H5T_C_S1; }
static inline hid_t kiln_h5_default(void) { return H5P_DEFAULT; }
static inline hid_t kiln_h5_all(void) { return H5S_ALL; }
static inline unsigned kiln_h5_read_only(void) { return H5F_ACC_RDONLY; }
static inline size_t kiln_h5_variable(void) { return H5T_VARIABLE; }
static inline void kiln_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
