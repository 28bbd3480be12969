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
#define UART_INTSTATUS (*(volatile uint32_t *)(UART0_BASE + 0x0Cu)) /* write 1 to clear */
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_CTRL_TX_RX 0x3u         /* TX and RX enable */
#define UART_CTRL_RX_INT (1u << 3)   /* RX interrupt enable */
#define UART_INTSTATUS_RX (1u << 1)
/* NVIC: UART0's RX interrupt is IRQ 0 on the MPS2 boards (AN385/AN386 application notes) */
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define NVIC_ICPR0 (*(volatile uint32_t *)0xE000E280u)
#define UART0_RX_IRQ_BIT (1u << 0)

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

#ifndef HARNESS_UART_SPIN
#define HARNESS_UART_SPIN 200u /* polls before sleeping: a byte of a frame in flight comes sooner */
#endif

#ifndef F_CPU
#define F_CPU 25000000L
#endif

/* the last composed time: board_timer_read extends the dual timer's 40 bits to 64 */
static uint64_t g_timer_last;

void board_init(void) {
  UART_BAUDDIV = 16u;
  UART_CTRL = UART_CTRL_TX_RX; /* the RX interrupt only while waiting (board_uart_read_byte) */
  NVIC_ISER0 = UART0_RX_IRQ_BIT;
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

/* Waits for a byte asleep, not spinning: a busy loop kept QEMU at a whole host
 * core while the farm was slow to send the next request, a core the other boards
 * of a parallel night needed. WFI with PRIMASK set wakes on the pending UART RX
 * interrupt without taking it (ARMv7-M: a pending interrupt that PRIMASK alone
 * masks is a WFI wake-up event), so no handler is needed. The pending state is
 * cleared before RXFULL is checked: a byte that arrives after the check leaves the
 * interrupt pending and the WFI returns at once. The RX interrupt is disabled,
 * cleared and unpended before PRIMASK is cleared, so it is never taken. Only the
 * host protocol waits here, never a timed window: the counts do not change.
 * It polls HARNESS_UART_SPIN times first: QEMU hands the UART one byte at a time,
 * and sleeping between the bytes of one frame made a 1 KiB ping 1.8x slower. 200
 * polls are as fast as 2000 on an idle host (100 KB each way: 4.7 / 3.9 s vs 4.3 /
 * 4.8 s) and cost QEMU 20-30% less CPU when three boards share two cores (the
 * guest spins less while the sender is descheduled); 50 was slower on an idle host. */
uint8_t board_uart_read_byte(void) {
  for (uint32_t spin = 0u; spin < HARNESS_UART_SPIN && !(UART_STATE & UART_STATE_RXFULL); ++spin) {
  }
  if (!(UART_STATE & UART_STATE_RXFULL)) {
    __asm volatile("cpsid i" ::: "memory");
    UART_CTRL = UART_CTRL_TX_RX | UART_CTRL_RX_INT;
    for (;;) {
      UART_INTSTATUS = UART_INTSTATUS_RX;
      NVIC_ICPR0 = UART0_RX_IRQ_BIT;
      if (UART_STATE & UART_STATE_RXFULL) {
        break;
      }
      __asm volatile("dsb\n\twfi" ::: "memory");
    }
    UART_CTRL = UART_CTRL_TX_RX;
    UART_INTSTATUS = UART_INTSTATUS_RX;
    NVIC_ICPR0 = UART0_RX_IRQ_BIT;
    __asm volatile("cpsie i" ::: "memory");
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
