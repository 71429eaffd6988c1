/* A stand-in for the NVIDIA driver's libcuda.so.1 on a machine with no GPU: the entry point
 * every CUDA program calls first, answering as the real driver does when it finds no device,
 * and the two calls that put its answer in words. Built with no C library (-nostdlib), so it
 * loads on any glibc. */
#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_NO_DEVICE 100

int cuInit(unsigned int flags) {
  (void)flags;
  return CUDA_ERROR_NO_DEVICE;
}

int cuGetErrorName(int error, const char **name) {
  if (error != CUDA_ERROR_NO_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  *name = "CUDA_ERROR_NO_DEVICE";
  return CUDA_SUCCESS;
}

int cuGetErrorString(int error, const char **text) {
  if (error != CUDA_ERROR_NO_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  *text = "no CUDA-capable device is detected";
  return CUDA_SUCCESS;
}
