/* Board layer for QEMU's MPS2 boards (AN385 Cortex-M3, AN386 Cortex-M4F):
 * CMSDK APB UART0 as the console, SysTick on the core clock as the timer.
 *
 * QEMU 7.2 has no DWT cycle counter (CYCCNT reads 0). Under `-icount shift=N`
 * SysTick advances with executed instructions: ticks = instructions * 2^N * f / 1e9,
 * which the host converts back to instructions (README, "Honest numbers"; docs/ARCHITECTURE.md). */
#if defined(HARNESS_BOARD_MPS2)

#include <stdint.h>

#include "board.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYST_RELOAD 0x00FFFFFFu
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_ICSR_PENDSTSET (1u << 26)

#ifndef F_CPU
#define F_CPU 25000000L
#endif

static volatile uint32_t g_systick_wraps;

void SysTick_Handler(void) { g_systick_wraps += 1u; }

void board_init(void) {
  UART_BAUDDIV = 16u;
  UART_CTRL = 0x3u; /* TX and RX enable */
  SYST_RVR = SYST_RELOAD;
  SYST_CVR = 0u;
  SYST_CSR = 0x7u; /* enable, interrupt on wrap, core clock */
}

void board_uart_write(const uint8_t *data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    while (UART_STATE & UART_STATE_TXFULL) {
    }
    UART_DATA = data[i];
  }
}

uint8_t board_uart_read_byte(void) {
  while (!(UART_STATE & UART_STATE_RXFULL)) {
  }
  return (uint8_t)UART_DATA;
}

uint64_t board_timer_read(void) {
  uint32_t wraps;
  uint32_t value;
  uint32_t pending;
  do {
    wraps = g_systick_wraps;
    value = SYST_CVR;
    pending = SCB_ICSR & SCB_ICSR_PENDSTSET;
  } while (wraps != g_systick_wraps);
  if (pending && value > SYST_RELOAD / 2u) {
    wraps += 1u; /* wrapped, but the SysTick interrupt has not run yet */
  }
  return ((uint64_t)wraps << 24) + (uint64_t)(SYST_RELOAD - value);
}

uint32_t board_timer_hz(void) { return (uint32_t)F_CPU; }
const char *board_timer_source(void) { return "systick"; }
#define HARNESS_STR2(x) #x
#define HARNESS_STR(x) HARNESS_STR2(x)
const char *board_name(void) { return HARNESS_STR(HARNESS_MCU); }

#endif
