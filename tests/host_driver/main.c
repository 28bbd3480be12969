/* Host driver for a generated model: runs the model once per input.
 *
 * stdin:  N inputs back to back, MODEL_INPUT_BYTES each (raw, little-endian)
 * stdout: N outputs back to back, MODEL_OUTPUT_BYTES each
 * exit:   0 ok; 2 a truncated input; 3 model_invoke() failed (status on stderr)
 *
 * Like the firmware harness, it refills the input before every inference: the
 * memory plan may reuse the input bytes for intermediate tensors.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "model_generated.h"

int main(void) {
  uint8_t input[MODEL_INPUT_BYTES];
  unsigned long count = 0;
  for (;;) {
    const size_t got = fread(input, 1, sizeof input, stdin);
    if (got == 0) {
      break;
    }
    if (got != sizeof input) {
      fprintf(stderr, "input #%lu truncated: %zu of %d bytes\n", count, got, MODEL_INPUT_BYTES);
      return 2;
    }
    memcpy(model_input(), input, sizeof input);
    const int32_t status = model_invoke();
    if (status != 0) {
      fprintf(stderr, "model_invoke() failed on input #%lu: status %ld\n", count, (long)status);
      return 3;
    }
    if (fwrite(model_output(), 1, MODEL_OUTPUT_BYTES, stdout) != MODEL_OUTPUT_BYTES) {
      fprintf(stderr, "short write on output #%lu\n", count);
      return 3;
    }
    ++count;
  }
  return 0;
}
