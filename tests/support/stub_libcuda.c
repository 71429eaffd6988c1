/* A stand-in for the NVIDIA driver's libcuda.so.1 on a machine with no GPU: the one entry point
 * every CUDA program calls first, answering as the real driver does when it finds no device.
 * Built with no C library (-nostdlib), so it loads on any glibc. */
#define CUDA_ERROR_NO_DEVICE 100

int cuInit(unsigned int flags) {
  (void)flags;
  return CUDA_ERROR_NO_DEVICE;
}
