// OpenCL 1.2 API, so drivers that stop at 1.2 work.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
