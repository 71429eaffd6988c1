/*
 * Loads a SavedModel with TensorFlow's C API (TF_LoadSessionFromSavedModel, tag "serve": the
 * C++ loader TF Serving uses) and runs requests on it with TF_SessionRun, in a process with
 * no Python in it.
 *
 *   run_saved_model EXPORT_DIR < requests > responses
 *
 * Requests and responses are little-endian binary records, one response per request, so
 * that a failed request (an undecodable image) is answered and the next one still runs.
 *
 * request:  u32 n_inputs, then per input:  str tensor_name, u32 n, n x str element
 *                                          (a 1-D DT_STRING tensor of n elements)
 *           u32 n_outputs, then per output: str tensor_name
 * response: u32 code (TF_Code, 0 OK), str message, then if OK u32 n_outputs and per output:
 *           u32 dtype (TF_DataType), u32 rank, rank x i64 dim, then the values:
 *           DT_STRING: per element str; other types: u64 byte count and the raw bytes.
 * str:      u32 length, then that many bytes.
 * tensor_name is "operation:index", as in a SignatureDef's TensorInfo.name.
 *
 * Exit status: 0 after answering every request, 1 if the model does not load or the
 * input is malformed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensorflow/c/c_api.h"
#include "tensorflow/c/tf_tstring.h"

static void die(const char *what, const char *detail) {
  fprintf(stderr, "run_saved_model: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

/* Returns 0 at a clean end of input (before a request's first byte), 1 otherwise. */
static int read_exact(void *buffer, size_t size, int eof_ok) {
  size_t got = fread(buffer, 1, size, stdin);
  if (got == size) return 1;
  if (got == 0 && eof_ok && feof(stdin)) return 0;
  die("truncated request", NULL);
  return 0;
}

static uint32_t read_u32(void) {
  uint32_t value;
  read_exact(&value, sizeof value, 0);
  return value;
}

static char *read_str(uint32_t *length) {
  *length = read_u32();
  char *text = malloc(*length + 1);
  if (!text) die("out of memory", NULL);
  if (*length) read_exact(text, *length, 0);
  text[*length] = '\0';
  return text;
}

static void write_bytes(const void *data, size_t size) {
  if (size && fwrite(data, 1, size, stdout) != size) die("cannot write the response", NULL);
}

static void write_u32(uint32_t value) { write_bytes(&value, sizeof value); }

static void write_str(const char *data, size_t size) {
  write_u32((uint32_t)size);
  write_bytes(data, size);
}

/* "operation:index" -> TF_Output in the loaded graph. */
static TF_Output find_output(TF_Graph *graph, const char *name) {
  char op_name[1024];
  const char *colon = strrchr(name, ':');
  size_t length = colon ? (size_t)(colon - name) : strlen(name);
  if (length >= sizeof op_name) die("tensor name too long", name);
  memcpy(op_name, name, length);
  op_name[length] = '\0';
  TF_Operation *operation = TF_GraphOperationByName(graph, op_name);
  if (!operation) die("no such operation in the graph", op_name);
  TF_Output output = {operation, colon ? atoi(colon + 1) : 0};
  return output;
}

static TF_Output read_tensor_name(TF_Graph *graph) {
  uint32_t length;
  char *name = read_str(&length);
  TF_Output output = find_output(graph, name);
  free(name);
  return output;
}

static TF_Tensor *read_string_tensor(void) {
  uint32_t count = read_u32();
  int64_t dims[1] = {count};
  TF_Tensor *tensor = TF_AllocateTensor(TF_STRING, dims, 1, sizeof(TF_TString) * (size_t)count);
  TF_TString *elements = (TF_TString *)TF_TensorData(tensor);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t length;
    char *data = read_str(&length);
    TF_StringInit(&elements[i]);
    TF_StringCopy(&elements[i], data, length);
    free(data);
  }
  return tensor;
}

static void free_string_tensor(TF_Tensor *tensor) {
  TF_TString *elements = (TF_TString *)TF_TensorData(tensor);
  int64_t count = TF_TensorElementCount(tensor);
  for (int64_t i = 0; i < count; ++i) TF_StringDealloc(&elements[i]);
  TF_DeleteTensor(tensor);
}

static void write_tensor(const TF_Tensor *tensor) {
  TF_DataType dtype = TF_TensorType(tensor);
  int rank = TF_NumDims(tensor);
  write_u32((uint32_t)dtype);
  write_u32((uint32_t)rank);
  for (int d = 0; d < rank; ++d) {
    int64_t dim = TF_Dim(tensor, d);
    write_bytes(&dim, sizeof dim);
  }
  if (dtype == TF_STRING) {
    const TF_TString *elements = (const TF_TString *)TF_TensorData(tensor);
    int64_t count = TF_TensorElementCount(tensor);
    for (int64_t i = 0; i < count; ++i) {
      write_str(TF_StringGetDataPointer(&elements[i]), TF_StringGetSize(&elements[i]));
    }
    return;
  }
  uint64_t size = TF_TensorByteSize(tensor);
  write_bytes(&size, sizeof size);
  write_bytes(TF_TensorData(tensor), size);
}

/* Reads one request, runs it, writes its response. Returns 0 at the end of input. */
static int serve_one(TF_Session *session, TF_Graph *graph) {
  uint32_t n_inputs;
  if (!read_exact(&n_inputs, sizeof n_inputs, 1)) return 0;
  TF_Output *inputs = calloc(n_inputs ? n_inputs : 1, sizeof *inputs);
  TF_Tensor **input_values = calloc(n_inputs ? n_inputs : 1, sizeof *input_values);
  for (uint32_t i = 0; i < n_inputs; ++i) {
    inputs[i] = read_tensor_name(graph);
    input_values[i] = read_string_tensor();
  }
  uint32_t n_outputs = read_u32();
  TF_Output *outputs = calloc(n_outputs ? n_outputs : 1, sizeof *outputs);
  TF_Tensor **output_values = calloc(n_outputs ? n_outputs : 1, sizeof *output_values);
  for (uint32_t i = 0; i < n_outputs; ++i) outputs[i] = read_tensor_name(graph);

  TF_Status *status = TF_NewStatus();
  TF_SessionRun(session, NULL, inputs, input_values, (int)n_inputs, outputs, output_values, (int)n_outputs,
                NULL, 0, NULL, status);
  TF_Code code = TF_GetCode(status);
  const char *message = TF_Message(status);
  write_u32((uint32_t)code);
  write_str(message, strlen(message));
  if (code == TF_OK) {
    write_u32(n_outputs);
    for (uint32_t i = 0; i < n_outputs; ++i) {
      write_tensor(output_values[i]);
      TF_DeleteTensor(output_values[i]);
    }
  }
  fflush(stdout);
  TF_DeleteStatus(status);
  for (uint32_t i = 0; i < n_inputs; ++i) free_string_tensor(input_values[i]);
  free(inputs);
  free(input_values);
  free(outputs);
  free(output_values);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: run_saved_model EXPORT_DIR < requests > responses\n");
    return 2;
  }
  TF_Graph *graph = TF_NewGraph();
  TF_Status *status = TF_NewStatus();
  TF_SessionOptions *options = TF_NewSessionOptions();
  const char *tags[] = {"serve"};
  TF_Session *session = TF_LoadSessionFromSavedModel(options, NULL, argv[1], tags, 1, graph, NULL, status);
  if (TF_GetCode(status) != TF_OK) die("the SavedModel does not load", TF_Message(status));
  fprintf(stderr, "run_saved_model: loaded %s with tag serve (TensorFlow %s C API)\n", argv[1], TF_Version());
  unsigned long served = 0;
  while (serve_one(session, graph)) ++served;
  TF_CloseSession(session, status);
  TF_DeleteSession(session, status);
  TF_DeleteSessionOptions(options);
  TF_DeleteGraph(graph);
  TF_DeleteStatus(status);
  fprintf(stderr, "run_saved_model: answered %lu requests\n", served);
  return 0;
}
