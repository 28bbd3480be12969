/* Board layer for 8-bit AVR (megaAVR: ATmega2560, ATmega1284P), on the real chip and
 * on simavr alike: nothing here is particular to the emulator.
 *
 * Console: USART0, 8N1, double speed (U2X0); HARNESS_BAUD (default 1 Mbaud: UBRR 1 at
 * 16 MHz, exact). Received bytes go to a ring buffer from the RX-complete interrupt;
 * a reader with nothing to read sleeps (idle mode) until the next interrupt.
 *
 * Timer: Timer1, normal mode, clk/1 -- it counts core cycles. Its 16-bit counter is
 * extended by an overflow count kept by TIMER1_OVF_vect. The overflow interrupt is the
 * only interrupt that can fire inside a timed window (the host sends nothing during a
 * RUN), and its own cycles are taken out of the count: the handler is branch-free, so
 * each run of it costs the same number of cycles, g_isr_cycles, which board_init
 * measures once on the chip it runs on (the same window timed with and without an
 * overflow in it). Every completed handler adds g_isr_cycles to g_isr_total, and
 *
 *   board_timer_read() = (overflows << 16 | TCNT1) - g_isr_total
 *
 * is the cycles the core spent outside the handler since boot, exact to the cycle
 * (an overflow still pending when the timer is read counts in the first term but has
 * not yet run its handler, so it is not in the second either). The read is branch-free
 * too: the model loop and the null loop of main.c execute the same cycles around the
 * model whatever the counter values.
 *
 * Marker: PB7 (the Arduino Mega's LED, pin 13) high around the timed model loop.
 * Faults: an interrupt with no handler (BADISR_vect) sends a FAULT frame (arch 3). */
#if defined(HARNESS_BOARD_AVR) && defined(__AVR__)

#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>
#include <stdint.h>

#include "board.h"
#include "fault.h"

#ifndef F_CPU
#define F_CPU 16000000UL
#endif
#ifndef HARNESS_BAUD
#define HARNESS_BAUD 1000000UL
#endif

#define RX_SIZE 128u /* a power of two */

static volatile uint8_t g_rx_buf[RX_SIZE];
static volatile uint8_t g_rx_head;
static volatile uint8_t g_rx_tail;

static volatile uint32_t g_overflows;  /* completed overflow handlers */
static volatile uint32_t g_isr_total;  /* their cycles, g_isr_cycles each */
static volatile uint16_t g_isr_cycles; /* one handler's cycles, from entry to after reti */

ISR(USART0_RX_vect) {
  const uint8_t byte = UDR0;
  const uint8_t next = (uint8_t)((g_rx_head + 1u) & (RX_SIZE - 1u));
  if (next != g_rx_tail) {
    g_rx_buf[g_rx_head] = byte;
    g_rx_head = next;
  }
}

/* Branch-free: adds and stores only, the same cycles on every overflow. */
ISR(TIMER1_OVF_vect) {
  g_overflows = g_overflows + 1u;
  g_isr_total = g_isr_total + g_isr_cycles;
}

ISR(BADISR_vect) {
  const uint32_t words[3] = {FAULT_ARCH_AVR, 1u /* interrupt without a handler */, (uint32_t)SP};
  fault_report(words, 3);
}

/* Cycles of one 16-bit window over a fixed delay, with the counter started at
 * ``start`` (an overflow falls into the window when start is near the top). */
static uint16_t timed_delay(uint16_t start) {
  cli();
  TCNT1 = start;
  const uint16_t a = TCNT1;
  sei();
  __builtin_avr_delay_cycles(400);
  cli();
  const uint16_t b = TCNT1;
  sei();
  return (uint16_t)(b - a);
}

static void calibrate_overflow_handler(void) {
  g_isr_cycles = 0;
  const uint16_t plain = timed_delay(0u);
  const uint16_t with_overflow = timed_delay((uint16_t)(0u - 200u));
  g_isr_cycles = (uint16_t)(with_overflow - plain);
  cli();
  TCNT1 = 0u;
  TIFR1 = _BV(TOV1);
  g_overflows = 0u;
  g_isr_total = 0u;
  sei();
}

void board_init(void) {
  const uint16_t ubrr = (uint16_t)((F_CPU + 4UL * HARNESS_BAUD) / (8UL * HARNESS_BAUD) - 1UL);
  UBRR0H = (uint8_t)(ubrr >> 8);
  UBRR0L = (uint8_t)ubrr;
  UCSR0A = _BV(U2X0);
  UCSR0C = _BV(UCSZ01) | _BV(UCSZ00); /* 8N1 */
  UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);

  DDRB |= _BV(PB7);
  PORTB &= (uint8_t)~_BV(PB7);

  TCCR1A = 0u;
  TCCR1B = _BV(CS10); /* normal mode, clk/1 */
  TIFR1 = _BV(TOV1);
  TIMSK1 = _BV(TOIE1);

  set_sleep_mode(SLEEP_MODE_IDLE);
  sei();
  calibrate_overflow_handler();
}

void board_uart_write(const uint8_t *data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    while (!(UCSR0A & _BV(UDRE0))) {
    }
    UDR0 = data[i];
  }
}

uint8_t board_uart_read_byte(void) {
  for (;;) {
    cli();
    if (g_rx_head != g_rx_tail) {
      const uint8_t byte = g_rx_buf[g_rx_tail];
      g_rx_tail = (uint8_t)((g_rx_tail + 1u) & (RX_SIZE - 1u));
      sei();
      return byte;
    }
    /* sei takes effect after the next instruction: no interrupt can slip in between
     * the check above and the sleep, and the one that comes wakes the core */
    sleep_enable();
    __asm__ __volatile__("sei\n\tsleep" ::: "memory");
    sleep_disable();
  }
}

uint64_t board_timer_read(void) {
  const uint8_t sreg = SREG;
  cli();
  const uint16_t count = TCNT1;
  const uint32_t overflows = g_overflows;
  const uint32_t isr_total = g_isr_total;
  /* an overflow not yet handled, that happened before count was read (count small) */
  const uint8_t pending = (uint8_t)((TIFR1 >> TOV1) & 1u & (uint8_t)(~(count >> 15) & 1u));
  SREG = sreg;
  union {
    uint64_t value;
    uint8_t bytes[8];
  } raw;
  const uint32_t high = overflows + pending;
  raw.bytes[0] = (uint8_t)count;
  raw.bytes[1] = (uint8_t)(count >> 8);
  raw.bytes[2] = (uint8_t)high;
  raw.bytes[3] = (uint8_t)(high >> 8);
  raw.bytes[4] = (uint8_t)(high >> 16);
  raw.bytes[5] = (uint8_t)(high >> 24);
  raw.bytes[6] = 0u;
  raw.bytes[7] = 0u;
  return raw.value - isr_total;
}

uint32_t board_timer_hz(void) { return (uint32_t)F_CPU; }
const char *board_timer_source(void) { return "timer1"; }
uint32_t board_timer_isr_cycles(void) { return g_isr_cycles; }

void board_marker(int on) {
  if (on) {
    PORTB |= _BV(PB7);
  } else {
    PORTB &= (uint8_t)~_BV(PB7);
  }
}

#define HARNESS_STR2(x) #x
#define HARNESS_STR(x) HARNESS_STR2(x)
const char *board_name(void) { return HARNESS_STR(HARNESS_MCU); }

#endif
