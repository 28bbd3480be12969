#include "protocol.h"

#include "board.h"

uint16_t proto_crc16(const uint8_t *data, size_t len, uint16_t crc) {
  for (size_t i = 0; i < len; ++i) {
    crc ^= (uint16_t)((uint16_t)data[i] << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    }
  }
  return crc;
}

void proto_send(uint8_t type, const uint8_t *payload, size_t len) {
  const uint8_t header[5] = {PROTO_SYNC0, PROTO_SYNC1, (uint8_t)(len & 0xFFu),
                             (uint8_t)(len >> 8), type};
  uint16_t crc = proto_crc16(&header[2], 3, 0xFFFFu);
  crc = proto_crc16(payload, len, crc);
  const uint8_t trailer[2] = {(uint8_t)(crc & 0xFFu), (uint8_t)(crc >> 8)};
  board_uart_write(header, sizeof header);
  board_uart_write(payload, len);
  board_uart_write(trailer, sizeof trailer);
}

size_t proto_receive(uint8_t *type, uint8_t *payload, size_t capacity) {
  for (;;) {
    /* hunt for the sync pair */
    if (board_uart_read_byte() != PROTO_SYNC0) {
      continue;
    }
    uint8_t b = board_uart_read_byte();
    while (b == PROTO_SYNC0) {
      b = board_uart_read_byte();
    }
    if (b != PROTO_SYNC1) {
      continue;
    }
    uint8_t head[3];
    for (int i = 0; i < 3; ++i) {
      head[i] = board_uart_read_byte();
    }
    const size_t len = (size_t)head[0] | ((size_t)head[1] << 8);
    if (len > capacity) {
      continue; /* not a frame we could have been sent: resynchronize */
    }
    for (size_t i = 0; i < len; ++i) {
      payload[i] = board_uart_read_byte();
    }
    const uint8_t lo = board_uart_read_byte();
    const uint8_t hi = board_uart_read_byte();
    uint16_t crc = proto_crc16(head, 3, 0xFFFFu);
    crc = proto_crc16(payload, len, crc);
    if (crc == (uint16_t)(lo | (hi << 8))) {
      *type = head[2];
      return len;
    }
  }
}
