/* Framed binary protocol between tinyfarm and the harness.
 *
 *   0xA5 0x5A | len: u16 LE | type: u8 | payload[len] | crc: u16 LE
 *
 * crc is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over len, type and payload.
 * The receiver drops bytes until a sync pair whose frame has a valid CRC, so it
 * resynchronizes after garbage on the line. The host side is farm/board/protocol.py. */
#ifndef TINYFARM_PROTOCOL_H
#define TINYFARM_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_SYNC0 0xA5u
#define PROTO_SYNC1 0x5Au
/* Largest payload of a frame, either way. A board with little RAM lowers it
 * (board option build.harness_defines, e.g. PROTO_MAX_PAYLOAD=512u on sifive_e);
 * the harness announces it in its identity ("max_payload=") and the host chunks
 * its requests to fit. The identity text itself must fit: keep it >= 320. */
#ifndef PROTO_MAX_PAYLOAD
#define PROTO_MAX_PAYLOAD 1024u
#endif

enum proto_type {
  /* requests (host -> device) and their responses (type | 0x80) */
  PROTO_IDENTIFY = 0x01,    /* -> text "key=value\n" lines */
  PROTO_LOAD_INPUT = 0x02,  /* u32 offset, bytes -> u8 status */
  PROTO_RUN = 0x03,         /* u32 count -> u8 status, i32 kernel status */
  PROTO_READ_OUTPUT = 0x04, /* u32 offset, u16 len -> u8 status, bytes */
  PROTO_READ_TIMING = 0x05, /* -> u8 status, u32 n, u64 total, u64 min, u64 max, u64 loop,
                               u64 null_loop (raw ticks; see timed_loop in main.c); then, on
                               boards that paint their stack (stack_paint.h), u32 stack bytes
                               used since boot, u32 stack bytes reserved. A host reads the
                               fields it knows and ignores any that follow. */
  PROTO_PING = 0x06,        /* bytes -> the same bytes */
  PROTO_RESPONSE = 0x80,
  /* unsolicited (device -> host) */
  PROTO_READY = 0x7E,       /* sent once at boot; payload as IDENTIFY's response */
  PROTO_FAULT = 0x7F,       /* fault registers, see fault.h */
  PROTO_ERROR = 0xFF,       /* u8 status, text */
};

enum proto_status {
  PROTO_OK = 0,
  PROTO_E_UNKNOWN_TYPE = 1,
  PROTO_E_BAD_LENGTH = 2,
  PROTO_E_OUT_OF_RANGE = 3,
  PROTO_E_KERNEL = 4,
  PROTO_E_NO_TIMING = 5,
};

uint16_t proto_crc16(const uint8_t *data, size_t len, uint16_t crc);

/* Blocks until a frame with a valid CRC arrives; returns its payload length. */
size_t proto_receive(uint8_t *type, uint8_t *payload, size_t capacity);
void proto_send(uint8_t type, const uint8_t *payload, size_t len);

#endif
