/* Board layer for QEMU's MPS2 boards (AN385 Cortex-M3, AN386 Cortex-M4F):
 * CMSDK APB UART0 as the console, the CMSDK APB dual timer on the 25 MHz
 * system clock as the timer.
 *
 * QEMU 7.2 has no DWT cycle counter (CYCCNT reads 0). Under `-icount shift=N`
 * the timer advances with executed instructions: ticks = instructions * 2^N * f / 1e9,
 * which the host converts back to instructions (README, "Honest numbers"; docs/ARCHITECTURE.md).
 *
 * No interrupt: the 64-bit time is composed from two free-running 32-bit down
 * counters of the dual timer, one at the clock (the low bits, exact) and one at
 * clock / 256 (the high bits), read without any handler. The former timer, a
 * SysTick with a 24-bit reload and a wrap interrupt, ran 5 handler instructions
 * every 2^24 ticks (10.5 M instructions at shift 6) inside the timed windows, and
 * how many fell into a window depended on the start phase, so long windows (ic,
 * vww) moved by 1-2 instructions per inference between runs. board_timer_read is
 * branch-free: it executes the same instructions whatever the counter values, so
 * the model loop and the null loop of main.c differ by the model alone. */
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

/* CMSDK APB dual timer (CMSDK TRM, ARM DDI0479): two 32-bit down counters */
#define DUALTIMER_BASE 0x40002000u
#define TIMER1_LOAD (*(volatile uint32_t *)(DUALTIMER_BASE + 0x00u))
#define TIMER1_VALUE (*(volatile uint32_t *)(DUALTIMER_BASE + 0x04u))
#define TIMER1_CONTROL (*(volatile uint32_t *)(DUALTIMER_BASE + 0x08u))
#define TIMER2_LOAD (*(volatile uint32_t *)(DUALTIMER_BASE + 0x20u))
#define TIMER2_VALUE (*(volatile uint32_t *)(DUALTIMER_BASE + 0x24u))
#define TIMER2_CONTROL (*(volatile uint32_t *)(DUALTIMER_BASE + 0x28u))
#define TIMER_CONTROL_32BIT (1u << 1)
#define TIMER_CONTROL_PRESCALE_256 (2u << 2)
#define TIMER_CONTROL_ENABLE (1u << 7) /* free-running (mode 0), no interrupt (bit 5 clear) */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
/* CMSDK APB timer 0: a periodic wake-up for QEMU, never an interrupt (see board_init) */
#define TIMER0_BASE 0x40000000u
#define TIMER0_CTRL (*(volatile uint32_t *)(TIMER0_BASE + 0x00u))
#define TIMER0_RELOAD (*(volatile uint32_t *)(TIMER0_BASE + 0x08u))
#define TIMER0_VALUE (*(volatile uint32_t *)(TIMER0_BASE + 0x04u))
#define TIMER0_CTRL_ENABLE (1u << 0) /* interrupt enable (bit 3) clear */
#ifndef HARNESS_WAKEUP_TICKS
#define HARNESS_WAKEUP_TICKS 0x00100000u
#endif

#ifndef F_CPU
#define F_CPU 25000000L
#endif

/* the last composed time: board_timer_read extends the dual timer's 40 bits to 64 */
static uint64_t g_timer_last;

void board_init(void) {
  UART_BAUDDIV = 16u;
  UART_CTRL = 0x3u; /* TX and RX enable */
  SYST_CSR = 0u;    /* no SysTick and no SysTick interrupt (see above) */
  TIMER1_CONTROL = TIMER_CONTROL_32BIT; /* stopped, 32-bit, free-running, no interrupt */
  TIMER2_CONTROL = TIMER_CONTROL_32BIT | TIMER_CONTROL_PRESCALE_256;
  TIMER1_LOAD = 0xFFFFFFFFu;
  TIMER2_LOAD = 0xFFFFFFFFu;
  TIMER1_CONTROL = TIMER_CONTROL_32BIT | TIMER_CONTROL_ENABLE;
  TIMER2_CONTROL = TIMER_CONTROL_32BIT | TIMER_CONTROL_PRESCALE_256 | TIMER_CONTROL_ENABLE;
  /* g_timer_last starts at 0 from .bss: an assignment here would be a 64-bit store, which a
   * hard-float build makes with VFP (vstr d7), faulting in board_init on an FPU-less core
   * instead of at the model's first float instruction */
  /* Under -icount QEMU runs the guest until its next timer event before it looks
   * at the UART socket again; with no timer due for 2^32 ticks a request would
   * wait minutes. Timer 0 expires every HARNESS_WAKEUP_TICKS with its interrupt
   * disabled: QEMU stops to serve I/O, the guest executes nothing for it. */
  TIMER0_RELOAD = HARNESS_WAKEUP_TICKS;
  TIMER0_VALUE = HARNESS_WAKEUP_TICKS;
  TIMER0_CTRL = TIMER0_CTRL_ENABLE;
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

/* Ticks since board_init, branch-free. The coarse counter (clock / 256) gives the
 * time to within 256 ticks plus the few instructions between the two reads; the
 * fine counter gives it modulo 2^32 exactly: the time is the one value congruent
 * to the fine count that lies within 2^31 ticks of the coarse one. That 40-bit
 * time (wrapping every 2^40 ticks, 12 h of guest time at 25 MHz) is extended to
 * 64 bits by adding the 40-bit distance from the previous read, which is exact
 * while successive reads are less than 2^40 ticks apart (a timed window reads the
 * timer around every inference). */
uint64_t board_timer_read(void) {
  const uint32_t coarse = 0xFFFFFFFFu - TIMER2_VALUE;
  const uint32_t fine = 0xFFFFFFFFu - TIMER1_VALUE;
  const uint64_t rough = (uint64_t)coarse << 8;
  const uint64_t time40 = rough + (uint64_t)(int64_t)(int32_t)(fine - (uint32_t)rough);
  const uint64_t mask40 = (1ull << 40) - 1u;
  g_timer_last += (time40 - g_timer_last) & mask40;
  return g_timer_last;
}

uint32_t board_timer_hz(void) { return (uint32_t)F_CPU; }
const char *board_timer_source(void) { return "dualtimer"; }
#define HARNESS_STR2(x) #x
#define HARNESS_STR(x) HARNESS_STR2(x)
const char *board_name(void) { return HARNESS_STR(HARNESS_MCU); }

#endif
