/* Board layer for QEMU's sifive_e (FE310-class RV32IMAC, no FPU): UART0 of the
 * FE310 as the console, the minstret CSR as the timer.
 *
 * Under `-icount shift=N` QEMU derives minstret (and mcycle) from the virtual
 * clock, which advances 2^N ns per executed instruction; with shift=0 the count
 * is the number of retired instructions itself, deterministic from run to run
 * (README, "Honest numbers"; docs/ARCHITECTURE.md). The host labels it "instructions". */
#if defined(HARNESS_BOARD_SIFIVE_E) && defined(__riscv)

#include <stdint.h>

#include "board.h"

#define UART0_BASE 0x10013000u
#define UART_TXDATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_RXDATA (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_TXCTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_RXCTRL (*(volatile uint32_t *)(UART0_BASE + 0x0Cu))
#define UART_IE (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define UART_DIV (*(volatile uint32_t *)(UART0_BASE + 0x18u))
#define UART_IE_RXWM (1u << 1) /* pending while the RX FIFO holds more than rxcnt (0) bytes */
/* PLIC of the FE310: UART0 is source 3; context 0 is hart 0 in machine mode */
#define PLIC_BASE 0x0C000000u
#define PLIC_UART0_SOURCE 3u
#define PLIC_PRIORITY(n) (*(volatile uint32_t *)(PLIC_BASE + 4u * (n)))
#define PLIC_ENABLE0 (*(volatile uint32_t *)(PLIC_BASE + 0x2000u))
#define PLIC_THRESHOLD (*(volatile uint32_t *)(PLIC_BASE + 0x200000u))
#define PLIC_CLAIM (*(volatile uint32_t *)(PLIC_BASE + 0x200004u))
#define MIE_MEIE (1u << 11)
#define UART_TXDATA_FULL (1u << 31)
#define UART_RXDATA_EMPTY (1u << 31)

#ifndef HARNESS_UART_SPIN
#define HARNESS_UART_SPIN 200u /* polls before sleeping: a byte of a frame in flight comes sooner (200 as fast as 2000 alone, half the QEMU CPU when boards share the cores) */
#endif

#ifndef F_CPU
#define F_CPU 320000000L
#endif

void board_init(void) {
  /* 115200 baud from a 320 MHz tlclk on the real chip; QEMU ignores the divisor */
  UART_DIV = (uint32_t)(F_CPU / 115200L) - 1u;
  UART_TXCTRL = 1u; /* txen, one stop bit */
  UART_RXCTRL = 1u; /* rxen, watermark 0 */
  /* the UART's RX interrupt reaches mip.MEIP through the PLIC, and mie.MEIE lets it
   * wake a WFI; mstatus.MIE stays clear (startup), so it is never taken as a trap */
  UART_IE = UART_IE_RXWM;
  PLIC_PRIORITY(PLIC_UART0_SOURCE) = 1u;
  PLIC_THRESHOLD = 0u;
  PLIC_ENABLE0 = 1u << PLIC_UART0_SOURCE;
  __asm volatile("csrs mie, %0" : : "r"(MIE_MEIE));
}

void board_uart_write(const uint8_t *data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    while (UART_TXDATA & UART_TXDATA_FULL) {
    }
    UART_TXDATA = data[i];
  }
}

/* Waits for a byte asleep, not spinning (a busy loop kept QEMU at a whole host
 * core between requests). WFI wakes when mip & mie is non-zero, whatever
 * mstatus.MIE: a byte that arrives after the empty read leaves MEIP pending and
 * the WFI returns at once. The claim and complete after a wake-up let the PLIC
 * signal the next byte. Only the host protocol waits here, never a timed window. */
uint8_t board_uart_read_byte(void) {
  for (uint32_t spin = 0u;; ++spin) {
    const uint32_t value = UART_RXDATA; /* one read pops the FIFO: keep the value */
    if (!(value & UART_RXDATA_EMPTY)) {
      return (uint8_t)value;
    }
    if (spin < HARNESS_UART_SPIN) {
      continue;
    }
    __asm volatile("wfi" ::: "memory");
    const uint32_t source = PLIC_CLAIM;
    if (source != 0u) {
      PLIC_CLAIM = source; /* complete */
    }
  }
}

/* A 64-bit CSR read on RV32: high, low, high again, without a branch (the model
 * loop and the null loop of main.c must execute the same instructions around the
 * model whatever the counter values). When the low half wrapped between the two
 * high reads, a low half below 2^31 was read after the wrap (the second high half
 * goes with it) and one above 2^31 before it (the first one does). */
uint64_t board_timer_read(void) {
  uint32_t hi;
  uint32_t lo;
  uint32_t again;
  __asm volatile("csrr %0, minstreth" : "=r"(hi));
  __asm volatile("csrr %0, minstret" : "=r"(lo));
  __asm volatile("csrr %0, minstreth" : "=r"(again));
  const uint32_t before_wrap = 0u - (lo >> 31); /* all ones when lo >= 2^31 */
  const uint32_t high = (hi & before_wrap) | (again & ~before_wrap);
  return ((uint64_t)high << 32) | lo;
}

uint32_t board_timer_hz(void) { return (uint32_t)F_CPU; }
const char *board_timer_source(void) { return "minstret"; }
#define HARNESS_STR2(x) #x
#define HARNESS_STR(x) HARNESS_STR2(x)
const char *board_name(void) { return HARNESS_STR(HARNESS_MCU); }

#endif
