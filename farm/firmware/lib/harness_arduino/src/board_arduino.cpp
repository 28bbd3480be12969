/* Board layer for real boards on PlatformIO's Arduino framework (STM32, nRF52,
 * RP2040, ESP32, ...), behind the same board.h interface as the QEMU boards.
 *
 * - UART: the core's Serial (USB CDC or the ST-Link's virtual COM port).
 * - Timer: DWT->CYCCNT on cores that have it (Cortex-M3/M4/M7/M33/M55: TRCENA in
 *   DEMCR, CYCCNTENA in DWT_CTRL; unlocked via DWT_LAR for the M7), extended to 64
 *   bits, named "dwt" at the core clock. Elsewhere (Cortex-M0/M0+, RISC-V ESP32-C3,
 *   Xtensa) micros(), named "micros" at 1 MHz: the host labels those counts as
 *   scaled from a microsecond timer.
 * - Marker: HARNESS_MARKER_PIN (a build flag, e.g. -DHARNESS_MARKER_PIN=PA8) is
 *   driven high around the timed model loop for a power monitor's logic input.
 *
 * The Arduino core owns main(): setup() runs the harness (harness_main in main.c)
 * and never returns. The core's own start-up and fault handlers are used (the
 * harness's startup files are left out of Arduino builds), so a fault on an
 * Arduino board is reported as a hang, not decoded.
 *
 * A library of its own (harness_arduino), in the lib_deps of Arduino builds only:
 * a C++ file among the bare-metal builds' sources would make them link libstdc++.
 *
 * UNVERIFIED: this file cannot be compiled on the machines tinyfarm is developed
 * on (the Arduino cores come from PlatformIO's registry) and has not run on a board.
 */
#if defined(ARDUINO)

#include <Arduino.h>
#include <stdint.h>

extern "C" {
#include "board.h"
int harness_main(void);
}

#ifndef HARNESS_BAUD
#define HARNESS_BAUD 115200
#endif

#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__) || \
    defined(__ARM_ARCH_8_1M_MAIN__)
#define HARNESS_HAS_DWT 1
#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CTRL_NOCYCCNT (1u << 25)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)
#else
#define HARNESS_HAS_DWT 0
#endif

static bool g_dwt;        /* the cycle counter is present and counting */
static uint32_t g_last;   /* last raw 32-bit reading, to extend it to 64 bits */
static uint64_t g_high;   /* wraps seen so far, << 32 */

static bool dwt_start(void) {
#if HARNESS_HAS_DWT
  DEMCR |= DEMCR_TRCENA;
  DWT_LAR = 0xC5ACCE55u; /* unlock (Cortex-M7); ignored where there is no lock */
  if (DWT_CTRL & DWT_CTRL_NOCYCCNT) {
    return false; /* implemented without a cycle counter */
  }
  DWT_CYCCNT = 0u;
  DWT_CTRL |= DWT_CTRL_CYCCNTENA;
  const uint32_t a = DWT_CYCCNT;
  for (volatile int i = 0; i < 16; ++i) {
  }
  return DWT_CYCCNT != a;
#else
  return false;
#endif
}

static uint32_t raw_timer(void) {
#if HARNESS_HAS_DWT
  if (g_dwt) {
    return DWT_CYCCNT;
  }
#endif
  return (uint32_t)micros();
}

extern "C" void board_init(void) {
  Serial.begin(HARNESS_BAUD);
  const unsigned long started = millis();
  while (!Serial && millis() - started < 3000u) {
    /* native USB: wait (a little) for the host to open the port */
  }
#ifdef HARNESS_MARKER_PIN
  pinMode(HARNESS_MARKER_PIN, OUTPUT);
  digitalWrite(HARNESS_MARKER_PIN, LOW);
#endif
  g_dwt = dwt_start();
  g_last = raw_timer();
  g_high = 0u;
}

extern "C" void board_uart_write(const uint8_t *data, size_t len) {
  Serial.write(data, len);
  Serial.flush();
}

extern "C" uint8_t board_uart_read_byte(void) {
  while (Serial.available() <= 0) {
  }
  return (uint8_t)Serial.read();
}

/* Called at least once per counter wrap (2^32 cycles: 23 s at 180 MHz) by the
 * harness's timed windows, which are far shorter. */
extern "C" uint64_t board_timer_read(void) {
  const uint32_t now = raw_timer();
  if (now < g_last) {
    g_high += (uint64_t)1u << 32;
  }
  g_last = now;
  return g_high | now;
}

extern "C" uint32_t board_timer_hz(void) {
  return g_dwt ? (uint32_t)F_CPU : 1000000u;
}

extern "C" const char *board_timer_source(void) { return g_dwt ? "dwt" : "micros"; }

extern "C" const char *board_name(void) {
#if defined(ARDUINO_BOARD)
  return ARDUINO_BOARD;
#else
  return "arduino";
#endif
}

extern "C" void board_marker(int on) {
#ifdef HARNESS_MARKER_PIN
  digitalWrite(HARNESS_MARKER_PIN, on ? HIGH : LOW);
#else
  (void)on;
#endif
}

void setup() { harness_main(); }

void loop() {}

#endif /* ARDUINO */
