/* tinyfarm's simavr runner: an AVR chip running one ELF, its USART0 on a TCP socket.
 *
 *   simavr-runner --mcu atmega2560 --freq 16000000 [--port N] [--report-pin B7] firmware.elf
 *
 * simavr's own command line has no UART input, so the farm builds this small program
 * against libsimavr (farm/board/simavr_runner.py) and drives the board through it, the
 * way it drives QEMU: the runner listens on 127.0.0.1 (--port, 0 = any free port), prints
 * "listening <port>" on stdout, and starts the chip only once the farm has connected and
 * sent one start byte (the runner's, never given to the chip): a client such as pyserial
 * discards what arrives while it opens the socket, so the chip must not talk before the
 * farm is ready to listen, and no byte of output is lost. Bytes from the socket go into the USART's receive FIFO as
 * fast as the chip's receiver takes them (simavr paces them at the baud rate the
 * firmware set and signals a full FIFO, XOFF); bytes the chip transmits go to the socket.
 *
 * The chip sees nothing a real one would not: the harness measures with its own Timer1.
 * --report-pin is for the farm's cross-check test only: each write of that pin (e.g. B7,
 * the harness's marker) prints "pin <0|1> cycle <simavr cycle counter>" on stderr, the
 * counter as it stood when the writing instruction began.
 *
 * The runner stops when the farm disconnects (exit 0), when the chip sleeps with
 * interrupts off (avr-libc's exit; "done", exit 0), or when simavr reports the core
 * crashed (exit 3), saying so on stderr. While the chip sleeps (the harness waits for
 * a request in idle mode) the runner waits for the socket instead of spinning. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <avr_ioport.h>
#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_irq.h>

/* the accessors of USART0's input FIFO (avr_uart.h declares its type only) */
DEFINE_FIFO(uint16_t, uart_fifo);

#define IO_EVERY 2048 /* instructions between two looks at the socket while running */

static avr_uart_t *g_uart; /* USART0: its input FIFO says whether the chip has bytes still to read */
static int g_fd = -1;
static int g_xoff;
static int g_closed;
static uint8_t g_in[4096];
static size_t g_in_len;
static size_t g_in_pos;
static uint8_t g_out[4096];
static size_t g_out_len;
static avr_irq_t *g_uart_input;
static avr_t *g_avr;

static void die(const char *what) {
  fprintf(stderr, "simavr-runner: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void log_to_stderr(avr_t *avr, const int level, const char *format, va_list ap) {
  (void)avr;
  if (level <= LOG_WARNING) {
    vfprintf(stderr, format, ap);
  }
}

static void flush_output(void) {
  size_t sent = 0;
  while (sent < g_out_len) {
    const ssize_t n = send(g_fd, g_out + sent, g_out_len - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      g_closed = 1;
      break;
    }
    sent += (size_t)n;
  }
  g_out_len = 0;
}

static void uart_output(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)param;
  if (g_out_len == sizeof g_out) {
    flush_output();
  }
  g_out[g_out_len++] = (uint8_t)value;
}

static void uart_xoff(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)param;
  g_xoff = value != 0;
}

static void uart_xon(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)param;
  if (value) {
    g_xoff = 0;
  }
}

static void marker(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  (void)param;
  fprintf(stderr, "pin %u cycle %llu\n", value ? 1u : 0u, (unsigned long long)g_avr->cycle);
  fflush(stderr);
}

/* Feed what the socket gave us while the receiver has room; read more when all is fed.
 * timeout_ms < 0: do not wait for the socket. */
static void service_io(int timeout_ms) {
  if (g_out_len) {
    flush_output();
  }
  while (g_in_pos < g_in_len && !g_xoff) {
    avr_raise_irq(g_uart_input, g_in[g_in_pos++]);
  }
  if (g_in_pos < g_in_len || g_closed) {
    return;
  }
  struct pollfd pfd = {.fd = g_fd, .events = POLLIN};
  const int ready = poll(&pfd, 1, timeout_ms < 0 ? 0 : timeout_ms);
  if (ready <= 0) {
    return;
  }
  const ssize_t n = recv(g_fd, g_in, sizeof g_in, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    g_closed = 1;
    return;
  }
  if (n > 0) {
    g_in_len = (size_t)n;
    g_in_pos = 0;
    while (g_in_pos < g_in_len && !g_xoff) {
      avr_raise_irq(g_uart_input, g_in[g_in_pos++]);
    }
  }
}

/* simavr's sleep callback: the chip sleeps until its next timer event; wait for the
 * farm meanwhile (simavr itself advances the cycle counter by howLong) -- but only when
 * the chip has nothing left to read: while bytes wait in USART0's FIFO (or here) the next
 * event is their arrival, a few hundred cycles away, and waiting for the socket then
 * would cost every received byte a poll timeout of real time. */
static void sleep_on_socket(avr_t *avr, avr_cycle_count_t how_long) {
  (void)avr;
  (void)how_long;
  const int pending = g_in_pos < g_in_len || (g_uart != NULL && !uart_fifo_isempty(&g_uart->input));
  service_io(pending ? -1 : 5);
}

/* USART0's module among the chip's I/O modules (simavr lists them by kind). */
static avr_uart_t *find_uart0(avr_t *avr) {
  for (avr_io_t *io = avr->io_port; io != NULL; io = io->next) {
    if (io->kind != NULL && strcmp(io->kind, "uart") == 0 && ((avr_uart_t *)io)->name == '0') {
      return (avr_uart_t *)io;
    }
  }
  return NULL;
}

static int listen_and_accept(int port) {
  const int srv = socket(AF_INET, SOCK_STREAM, 0);
  if (srv < 0) {
    die("socket");
  }
  const int one = 1;
  setsockopt(srv, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(srv, (struct sockaddr *)&addr, sizeof addr) < 0) {
    die("bind");
  }
  if (listen(srv, 1) < 0) {
    die("listen");
  }
  socklen_t len = sizeof addr;
  getsockname(srv, (struct sockaddr *)&addr, &len);
  printf("listening %u\n", (unsigned)ntohs(addr.sin_port));
  fflush(stdout);
  const int fd = accept(srv, NULL, NULL);
  if (fd < 0) {
    die("accept");
  }
  close(srv);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  uint8_t start;
  for (;;) { /* the start byte */
    const ssize_t n = recv(fd, &start, 1, 0);
    if (n == 1) {
      break;
    }
    if (n == 0 || errno != EINTR) {
      fprintf(stderr, "simavr-runner: the farm closed the connection before the start byte\n");
      exit(0);
    }
  }
  return fd;
}

static void usage(void) {
  fprintf(stderr, "usage: simavr-runner --mcu NAME --freq HZ [--port N] [--report-pin B7] firmware.elf\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *mcu = NULL;
  const char *elf = NULL;
  unsigned long freq = 0;
  int port = 0;
  const char *report_pin = NULL;
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--mcu") && i + 1 < argc) {
      mcu = argv[++i];
    } else if (!strcmp(argv[i], "--freq") && i + 1 < argc) {
      freq = strtoul(argv[++i], NULL, 10);
    } else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
      port = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--report-pin") && i + 1 < argc) {
      report_pin = argv[++i];
    } else if (argv[i][0] != '-' && elf == NULL) {
      elf = argv[i];
    } else {
      usage();
    }
  }
  if (mcu == NULL || elf == NULL || freq == 0) {
    usage();
  }
  avr_global_logger_set(log_to_stderr);
  elf_firmware_t firmware;
  memset(&firmware, 0, sizeof firmware);
  if (elf_read_firmware(elf, &firmware) != 0) {
    fprintf(stderr, "simavr-runner: cannot read the ELF %s\n", elf);
    return 2;
  }
  avr_t *avr = avr_make_mcu_by_name(mcu);
  if (avr == NULL) {
    fprintf(stderr, "simavr-runner: simavr has no mcu %s\n", mcu);
    return 2;
  }
  g_avr = avr;
  avr_init(avr);
  avr->log = LOG_WARNING;
  avr_load_firmware(avr, &firmware);
  avr->frequency = (uint32_t)freq;
  avr->sleep = sleep_on_socket;

  g_uart = find_uart0(avr);
  uint32_t flags = 0; /* no stdio echo of the UART, no host sleeps in its status reads */
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
  g_uart_input = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), uart_output, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), uart_xoff, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), uart_xon, NULL);
  if (report_pin != NULL) {
    if (strlen(report_pin) != 2 || report_pin[0] < 'A' || report_pin[0] > 'L' || report_pin[1] < '0' ||
        report_pin[1] > '7') {
      usage();
    }
    avr_irq_t *pin = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ(report_pin[0]), report_pin[1] - '0');
    if (pin == NULL) {
      fprintf(stderr, "simavr-runner: %s has no pin %s\n", mcu, report_pin);
      return 2;
    }
    avr_irq_register_notify(pin, marker, NULL);
  }

  g_fd = listen_and_accept(port);
  int state = cpu_Running;
  unsigned long steps = 0;
  while (!g_closed) {
    state = avr_run(avr);
    if (state == cpu_Done || state == cpu_Crashed) {
      break;
    }
    if (++steps % IO_EVERY == 0) {
      service_io(-1);
    }
  }
  if (g_out_len) {
    flush_output();
  }
  if (state == cpu_Crashed) {
    fprintf(stderr, "simavr-runner: the core crashed at pc 0x%05x, cycle %llu\n", (unsigned)avr->pc,
            (unsigned long long)avr->cycle);
    return 3;
  }
  if (state == cpu_Done) {
    fprintf(stderr, "simavr-runner: done (sleep with interrupts off) at cycle %llu\n",
            (unsigned long long)avr->cycle);
  }
  close(g_fd);
  return 0;
}
