/*
 * The floor: what the kernel charges a fan-out server on this machine, whatever its language.
 *
 * A server that does nothing but wait in epoll, read a message from a sender's socket and write
 * it, one write() each, to the members of a room, driven by a generator in a child process with
 * the layout of `parley bench fanout` (clients in rooms, senders at a total rate). The server
 * runs on one CPU and the generator on another, as in benchmarks/run. On loopback the kernel
 * runs the receiving socket's TCP processing and the wake-up of the generator inside the
 * server's write(), so this is the least CPU per delivery any server can show in that benchmark.
 *
 * Usage: floor RATE SECONDS PORT [CLIENTS ROOM_SIZE SENDERS BYTES SERVER_CPU GENERATOR_CPU]
 *   RATE is messages per second in total; each message goes to every member of its sender's room,
 *   the sender included, as the first tutorial's server does. Defaults: 1000 clients in rooms of 50, 20
 *   senders, 80-byte messages, server on CPU 1, generator on CPU 0.
 * Each message starts with its send time (8 bytes), so the generator also measures every delivery's
 * latency: the least any server can show here, since this one does no work of its own.
 * Prints one JSON object: deliveries sent and received, the server's CPU per delivery, and the
 * deliveries' latency (p50, p99, max, in ms).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double seconds(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

static int connected_socket(const struct sockaddr_in *address) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)address, sizeof *address) != 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Client i is in room i / room_size; sender s is the first client of room s. Each message starts
 * with its send time; every delivery's latency is its receipt time minus that. */
static void generate(const struct sockaddr_in *address, int clients, int senders, int bytes, double rate,
                     double duration, int pipe_out) {
    int *fds = calloc(clients, sizeof *fds), max_fd = 0;
    for (int i = 0; i < clients; i++) {
        fds[i] = connected_socket(address);
        if (fds[i] > max_fd) max_fd = fds[i];
    }
    int ep = epoll_create1(0);
    for (int i = 0; i < clients; i++) {
        struct epoll_event event = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &event);
    }
    /* Where each socket is in the message it is receiving, and that message's send time so far. */
    int *offset = calloc(max_fd + 1, sizeof *offset);
    double *stamp = calloc(max_fd + 1, sizeof *stamp);
    long capacity = (long)(rate * (duration + 1) + 2) * (clients / senders), latencies = 0;
    double *latency = malloc(capacity * sizeof *latency);
    char *message = malloc(bytes), buffer[65536];
    memset(message, 'm', bytes);
    sleep(1); /* let the server finish accepting */
    long sent = 0, received = 0;
    double start = now(), next = start;
    int sender = 0;
    while (now() - start < duration + 1.0) {
        if (now() >= next && now() - start < duration) {
            double sent_at = now();
            memcpy(message, &sent_at, sizeof sent_at);
            if (write(fds[sender * (clients / senders)], message, bytes) == bytes) sent++;
            sender = (sender + 1) % senders;
            next += 1.0 / rate;
        }
        int wait = (int)((next - now()) * 1000);
        struct epoll_event events[256];
        int ready = epoll_wait(ep, events, 256, wait < 0 ? 0 : wait);
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            ssize_t n = read(fd, buffer, sizeof buffer);
            double arrived = now();
            for (ssize_t k = 0; k < n; k++) {
                if (offset[fd] < (int)sizeof(double)) ((char *)&stamp[fd])[offset[fd]] = buffer[k];
                if (++offset[fd] < bytes) continue;
                offset[fd] = 0;
                received++;
                if (latencies < capacity) latency[latencies++] = arrived - stamp[fd];
            }
        }
    }
    qsort(latency, latencies, sizeof *latency, by_value);
    long counts[5] = {sent, received, 0, 0, 0};
    if (latencies > 0) {
        counts[2] = (long)(latency[latencies / 2] * 1e6);
        counts[3] = (long)(latency[(long)(latencies * 0.99)] * 1e6);
        counts[4] = (long)(latency[latencies - 1] * 1e6);
    }
    if (write(pipe_out, counts, sizeof counts) != sizeof counts) exit(1);
    exit(0);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: floor RATE SECONDS PORT [CLIENTS ROOM_SIZE SENDERS BYTES SERVER_CPU GENERATOR_CPU]\n");
        return 2;
    }
    double rate = atof(argv[1]), duration = atof(argv[2]);
    int port = atoi(argv[3]);
    int clients = argc > 4 ? atoi(argv[4]) : 1000, room_size = argc > 5 ? atoi(argv[5]) : 50;
    int senders = argc > 6 ? atoi(argv[6]) : 20, bytes = argc > 7 ? atoi(argv[7]) : 80;
    int server_cpu = argc > 8 ? atoi(argv[8]) : 1, generator_cpu = argc > 9 ? atoi(argv[9]) : 0;
    if (rate <= 0 || duration <= 0 || clients < room_size || room_size < 2 || senders < 1 ||
        senders > clients / room_size || bytes < 8 || bytes > 4096) {
        fprintf(stderr, "floor: needs RATE > 0, SECONDS > 0, 2 <= ROOM_SIZE <= CLIENTS, 1 <= SENDERS <= rooms, 8 <= BYTES <= 4096\n");
        return 2;
    }
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 4096) != 0) {
        perror("floor: listen");
        return 1;
    }
    int counts_pipe[2];
    if (pipe(counts_pipe) != 0) return 1;
    pid_t child = fork();
    if (child == 0) {
        pin(generator_cpu);
        close(listener);
        generate(&address, clients, senders, bytes, rate, duration, counts_pipe[1]);
    }
    pin(server_cpu);
    int *fds = calloc(clients, sizeof *fds);
    for (int i = 0; i < clients; i++) {
        fds[i] = accept(listener, NULL, NULL);
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    int ep = epoll_create1(0);
    for (int s = 0; s < senders; s++) {
        int fd = fds[s * (clients / senders)];
        struct epoll_event event = {.events = EPOLLIN, .data.u32 = (unsigned)(s * (clients / senders))};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &event);
    }
    /* Senders are spread over the clients; each one's room is the room_size clients from it. */
    char buffer[65536];
    struct rusage before, after;
    long deliveries = 0;
    int measuring = 0, open_senders = senders;
    while (open_senders > 0) {
        struct epoll_event events[64];
        int ready = epoll_wait(ep, events, 64, 2000);
        if (ready <= 0) break; /* two quiet seconds: the generator is done */
        if (!measuring) {
            getrusage(RUSAGE_SELF, &before);
            measuring = 1;
        }
        for (int i = 0; i < ready; i++) {
            int from = (int)events[i].data.u32;
            ssize_t n = read(fds[from], buffer, sizeof buffer);
            if (n <= 0) {
                /* The generator is done and closed its sockets. */
                epoll_ctl(ep, EPOLL_CTL_DEL, fds[from], NULL);
                open_senders--;
                continue;
            }
            for (int k = 0; k < room_size; k++) {
                if (write(fds[(from + k) % clients], buffer, n) == n) deliveries += n / bytes;
            }
        }
    }
    getrusage(RUSAGE_SELF, &after);
    long counts[5] = {0, 0, 0, 0, 0};
    if (read(counts_pipe[0], counts, sizeof counts) != sizeof counts) return 1;
    waitpid(child, NULL, 0);
    double user = seconds(after.ru_utime) - seconds(before.ru_utime);
    double system = seconds(after.ru_stime) - seconds(before.ru_stime);
    printf("{\"messages\": %ld, \"deliveries\": %ld, \"received\": %ld, \"cpuMicrosPerDelivery\": %.2f, "
           "\"kernelMicrosPerDelivery\": %.2f, \"latencyMs\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}}\n",
           counts[0], deliveries, counts[1], deliveries ? (user + system) / deliveries * 1e6 : 0.0,
           deliveries ? system / deliveries * 1e6 : 0.0, counts[2] / 1e3, counts[3] / 1e3, counts[4] / 1e3);
    return 0;
}
