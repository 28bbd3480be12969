/* Board layer of the harness: what main.c needs from a board. One implementation
 * per board family (board_mps2.c for QEMU's MPS2 boards, board_sifive_e.c for
 * QEMU's sifive_e, board_arduino.cpp in lib/harness_arduino for real boards on
 * PlatformIO's Arduino framework), selected at compile time by
 * HARNESS_BOARD_<NAME> (ARDUINO for the Arduino layer). */
#ifndef TINYFARM_BOARD_H
#define TINYFARM_BOARD_H

#include <stddef.h>
#include <stdint.h>

void board_init(void);

/* Blocking byte I/O on the console UART. */
void board_uart_write(const uint8_t *data, size_t len);
uint8_t board_uart_read_byte(void);

/* Free-running 64-bit timer in ticks of board_timer_hz(). */
uint64_t board_timer_read(void);
uint32_t board_timer_hz(void);
/* Name of the counter behind board_timer_read(): "systick", "dwt", "mcycle",
 * "minstret". The host converts its ticks into the device's count unit by it. */
const char *board_timer_source(void);
const char *board_name(void);

/* GPIO marker for power monitors: driven high around the timed model loop, low
 * otherwise, so a PPK2 / Joulescope logic input marks the inference window.
 * Optional: main.c has a weak no-op for boards without one. */
void board_marker(int on);

#endif
