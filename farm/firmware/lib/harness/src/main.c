/* The harness: answers the host's requests over the UART. The model comes from
 * the generated model.c (model_generated.h); kernels from the kernels library.
 *
 * Timing rule: the input is copied from the staging buffer into the model's
 * input tensor before every inference, because the static memory plan may reuse
 * the input buffer for intermediate tensors; that copy is not counted (see
 * timed_loop). */
#include <string.h>

#include "board.h"
#include "model_generated.h"
#include "protocol.h"
#include "stack_paint.h"

#ifndef FIRMWARE_HASH
#define FIRMWARE_HASH "unknown"
#endif
#ifndef FIRMWARE_FLOAT_ABI
#define FIRMWARE_FLOAT_ABI "unknown"
#endif

static uint8_t g_rx[PROTO_MAX_PAYLOAD + 8];
static uint8_t g_tx[PROTO_MAX_PAYLOAD + 8];
static uint8_t g_input_stage[MODEL_INPUT_BYTES];

#define HARNESS_MAX_RUN 64u

static struct {
  uint32_t count;
  uint64_t total;  /* sum of the per-inference windows */
  uint64_t min;
  uint64_t max;
  uint64_t loop;      /* the whole timed loop running model_invoke */
  uint64_t null_loop; /* the same loop running null_invoke */
  int valid;
} g_timing;

static uint32_t g_ticks[HARNESS_MAX_RUN];

typedef int32_t (*invoke_fn)(void);

/* An empty model: exactly two instructions (set the status, return), so that the
 * host can add them back: count = (loop - null_loop) / n + 2. */
#if defined(__thumb__) || defined(__riscv)
int32_t null_invoke(void);
__asm__(
    ".text\n"
    ".balign 4\n"
    ".global null_invoke\n"
#if defined(__thumb__)
    ".thumb_func\n"
    ".type null_invoke, %function\n"
    "null_invoke:\n"
    "  movs r0, #0\n"
    "  bx lr\n"
#else
    ".type null_invoke, @function\n"
    "null_invoke:\n"
    "  li a0, 0\n"
    "  ret\n"
#endif
    ".size null_invoke, .-null_invoke\n");
#define NULL_INVOKE_INSTRUCTIONS 2u
#elif defined(__AVR__)
/* AVR (cycles, not instructions): clear the int32 result (r22..r25), return. 3 cycles
 * plus ret: 5 cycles with a 3-byte PC (ATmega2560), 4 with a 2-byte one. */
int32_t null_invoke(void);
__asm__(
    ".text\n"
    ".global null_invoke\n"
    ".type null_invoke, @function\n"
    "null_invoke:\n"
    "  ldi r22, 0\n"
    "  ldi r23, 0\n"
    "  movw r24, r22\n"
    "  ret\n"
    ".size null_invoke, .-null_invoke\n");
#define NULL_INVOKE_INSTRUCTIONS 4u
#if defined(__AVR_3_BYTE_PC__)
#define NULL_INVOKE_CYCLES 8u
#else
#define NULL_INVOKE_CYCLES 7u
#endif
uint32_t board_timer_isr_cycles(void); /* board_avr.c: cycles taken out per timer overflow */
#else
__attribute__((noinline)) static int32_t null_invoke(void) { return 0; }
#define NULL_INVOKE_INSTRUCTIONS 0u /* unknown on this architecture: not added back */
#endif


static uint64_t g_timer_overhead;

static uint32_t rd_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void wr_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; ++i) {
    p[i] = (uint8_t)(v >> (8 * i));
  }
}

static void wr_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    p[i] = (uint8_t)(v >> (8 * i));
  }
}

/* Not the C library's strlen: newlib's Armv7E-M strlen uses DSP instructions
 * (uadd8), so a build for a DSP core would fault in the harness at boot on a core
 * without DSP, before the model ran. The harness keeps to the base instruction
 * set, so that a build that is not portable faults in the model, where the farm
 * can name the kernel. */
static size_t text_length(const char *text) {
  size_t n = 0;
  while (text[n] != '\0') {
    ++n;
  }
  return n;
}

static size_t append(size_t at, const char *text) {
  size_t n = text_length(text);
  if (at + n > PROTO_MAX_PAYLOAD) {
    n = PROTO_MAX_PAYLOAD - at;
  }
  memcpy(&g_tx[at], text, n);
  return at + n;
}

static size_t append_u32(size_t at, uint32_t v) {
  char digits[11];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v != 0u && n < 10);
  char text[11];
  for (int i = 0; i < n; ++i) {
    text[i] = digits[n - 1 - i];
  }
  text[n] = '\0';
  return append(at, text);
}

static size_t identity(void) {
  size_t n = 0;
  n = append(n, "board=");
  n = append(n, board_name());
  n = append(n, "\nmodel=");
  n = append(n, MODEL_NAME);
  n = append(n, "\nvariant=");
  n = append(n, MODEL_VARIANT);
  n = append(n, "\nmodel_hash=");
  n = append(n, MODEL_HASH);
  n = append(n, "\nfirmware_hash=");
  n = append(n, FIRMWARE_HASH);
  n = append(n, "\nfloat_abi=");
  n = append(n, FIRMWARE_FLOAT_ABI);
  n = append(n, "\ntimer=");
  n = append(n, board_timer_source());
  n = append(n, "\ntimer_hz=");
  n = append_u32(n, board_timer_hz());
  n = append(n, "\ntimer_overhead=");
  n = append_u32(n, (uint32_t)g_timer_overhead);
  n = append(n, "\ninput_bytes=");
  n = append_u32(n, MODEL_INPUT_BYTES);
  n = append(n, "\noutput_bytes=");
  n = append_u32(n, MODEL_OUTPUT_BYTES);
  n = append(n, "\narena_bytes=");
  n = append_u32(n, MODEL_ARENA_BYTES);
  n = append(n, "\nnull_invoke_instructions=");
  n = append_u32(n, NULL_INVOKE_INSTRUCTIONS);
#if defined(NULL_INVOKE_CYCLES)
  n = append(n, "\nnull_invoke_cycles=");
  n = append_u32(n, NULL_INVOKE_CYCLES);
  n = append(n, "\ntimer_isr_cycles=");
  n = append_u32(n, board_timer_isr_cycles());
#endif
  n = append(n, "\nmax_payload=");
  n = append_u32(n, PROTO_MAX_PAYLOAD);
  n = append(n, "\n");
  return n;
}

/* Minimum ticks of an empty timed window (two timer reads), reported as
 * timer_overhead: the host removes it from the per-inference min/max. */
static void calibrate_timer(void) {
  uint64_t best = UINT64_MAX;
  for (uint32_t i = 0; i < 8; ++i) {
    const uint64_t t0 = board_timer_read();
    const uint64_t t1 = board_timer_read();
    if (t1 - t0 < best) {
      best = t1 - t0;
    }
  }
  g_timer_overhead = best;
}

static void reply_status(uint8_t type, uint8_t status) {
  g_tx[0] = status;
  proto_send(type | PROTO_RESPONSE, g_tx, 1);
}

static void error(uint8_t status, const char *text) {
  g_tx[0] = status;
  const size_t n = append(1, text);
  proto_send(PROTO_ERROR, g_tx, n);
}

static void handle_load_input(const uint8_t *p, size_t len) {
  if (len < 4) {
    error(PROTO_E_BAD_LENGTH, "LOAD_INPUT needs u32 offset + bytes");
    return;
  }
  const uint32_t offset = rd_u32(p);
  const size_t n = len - 4;
  if (offset > MODEL_INPUT_BYTES || n > MODEL_INPUT_BYTES - offset) {
    error(PROTO_E_OUT_OF_RANGE, "LOAD_INPUT beyond the model input");
    return;
  }
  memcpy(&g_input_stage[offset], p + 4, n);
  reply_status(PROTO_LOAD_INPUT, PROTO_OK);
}

/* The timed loop. Each iteration refills the model input (the memory plan may
 * reuse that buffer) and times one inference; the whole loop is timed as well.
 * The loop is run once with model_invoke and once, identically, with null_invoke:
 * the difference of the two loop windows is the model's cost alone, free of the
 * input copy, the timer reads and the loop itself, and — since it spans n
 * inferences — free of the timer's tick quantization to within 2 ticks / n.
 * Everything in the loop is branch-free apart from the call, so both runs execute
 * the same instructions outside fn(). */
__attribute__((noinline)) static uint64_t timed_loop(invoke_fn fn, uint32_t n, int32_t *status) {
  int32_t st = 0;
  const uint64_t w0 = board_timer_read();
  for (uint32_t i = 0; i < n; ++i) {
    memcpy(model_input(), g_input_stage, MODEL_INPUT_BYTES);
    const uint64_t t0 = board_timer_read();
    st |= fn();
    const uint64_t t1 = board_timer_read();
    g_ticks[i] = (uint32_t)(t1 - t0);
  }
  const uint64_t w1 = board_timer_read();
  *status = st;
  return w1 - w0;
}

static void handle_run(const uint8_t *p, size_t len) {
  if (len != 4) {
    error(PROTO_E_BAD_LENGTH, "RUN needs u32 count");
    return;
  }
  const uint32_t count = rd_u32(p);
  if (count == 0u || count > HARNESS_MAX_RUN) {
    error(PROTO_E_OUT_OF_RANGE, "RUN count must be 1..64");
    return;
  }
  int32_t status = 0;
  int32_t null_status = 0;
  g_timing.valid = 0;
  board_marker(1); /* outside the timed loop: a power monitor's window, not counted */
  g_timing.loop = timed_loop(model_invoke, count, &status);
  board_marker(0);
  g_timing.count = count;
  g_timing.total = 0;
  g_timing.min = UINT64_MAX;
  g_timing.max = 0;
  for (uint32_t i = 0; i < count; ++i) {
    g_timing.total += g_ticks[i];
    if (g_ticks[i] < g_timing.min) {
      g_timing.min = g_ticks[i];
    }
    if (g_ticks[i] > g_timing.max) {
      g_timing.max = g_ticks[i];
    }
  }
  g_timing.null_loop = timed_loop(null_invoke, count, &null_status);
  g_timing.valid = (status == 0);
  g_tx[0] = status == 0 ? PROTO_OK : PROTO_E_KERNEL;
  wr_u32(&g_tx[1], (uint32_t)status);
  proto_send(PROTO_RUN | PROTO_RESPONSE, g_tx, 5);
}

static void handle_read_output(const uint8_t *p, size_t len) {
  if (len != 6) {
    error(PROTO_E_BAD_LENGTH, "READ_OUTPUT needs u32 offset, u16 length");
    return;
  }
  const uint32_t offset = rd_u32(p);
  const size_t n = (size_t)p[4] | ((size_t)p[5] << 8);
  if (offset > MODEL_OUTPUT_BYTES || n > MODEL_OUTPUT_BYTES - offset || n > PROTO_MAX_PAYLOAD - 1) {
    error(PROTO_E_OUT_OF_RANGE, "READ_OUTPUT beyond the model output");
    return;
  }
  g_tx[0] = PROTO_OK;
  memcpy(&g_tx[1], model_output() + offset, n);
  proto_send(PROTO_READ_OUTPUT | PROTO_RESPONSE, g_tx, n + 1);
}

static void handle_read_timing(void) {
  if (!g_timing.valid) {
    error(PROTO_E_NO_TIMING, "no successful RUN to report");
    return;
  }
  g_tx[0] = PROTO_OK;
  wr_u32(&g_tx[1], g_timing.count);
  wr_u64(&g_tx[5], g_timing.total);
  wr_u64(&g_tx[13], g_timing.min);
  wr_u64(&g_tx[21], g_timing.max);
  wr_u64(&g_tx[29], g_timing.loop);
  wr_u64(&g_tx[37], g_timing.null_loop);
#if defined(HARNESS_STACK_PAINTED)
  /* the painted stack's high-water mark since boot, and the reservation (stack_paint.h) */
  wr_u32(&g_tx[45], harness_stack_used());
  wr_u32(&g_tx[49], harness_stack_size());
  proto_send(PROTO_READ_TIMING | PROTO_RESPONSE, g_tx, 53);
#else
  proto_send(PROTO_READ_TIMING | PROTO_RESPONSE, g_tx, 45);
#endif
}

/* Boards without a marker pin (the emulated ones) get this no-op. */
__attribute__((weak)) void board_marker(int on) { (void)on; }

#if defined(ARDUINO)
#define HARNESS_MAIN harness_main /* the Arduino core owns main(); setup() calls this */
int harness_main(void);
#else
#define HARNESS_MAIN main
#endif

int HARNESS_MAIN(void) {
  board_init();
  calibrate_timer();
  proto_send(PROTO_READY, g_tx, identity());
  for (;;) {
    uint8_t type = 0;
    const size_t len = proto_receive(&type, g_rx, PROTO_MAX_PAYLOAD);
    switch (type) {
      case PROTO_IDENTIFY:
        proto_send(PROTO_IDENTIFY | PROTO_RESPONSE, g_tx, identity());
        break;
      case PROTO_LOAD_INPUT:
        handle_load_input(g_rx, len);
        break;
      case PROTO_RUN:
        handle_run(g_rx, len);
        break;
      case PROTO_READ_OUTPUT:
        handle_read_output(g_rx, len);
        break;
      case PROTO_READ_TIMING:
        handle_read_timing();
        break;
      case PROTO_PING:
        memcpy(g_tx, g_rx, len);
        proto_send(PROTO_PING | PROTO_RESPONSE, g_tx, len);
        break;
      default:
        error(PROTO_E_UNKNOWN_TYPE, "unknown request type");
        break;
    }
  }
}
