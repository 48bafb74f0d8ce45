/*
 * The floor, seen through `parley bench`: the least a Socket.IO server of the first tutorial can
 * do, so that Parley and the floor are measured by the same instrument.
 *
 * benchmarks/floor.c charges the kernel's share with a generator of its own; this server speaks
 * just enough of the protocol for `parley bench --protocol tutorial` to drive it: the WebSocket
 * handshake and frames, the Engine.IO open packet and pings, the Socket.IO CONNECT, and the
 * tutorial's events `login(name)`, `join(room)` and `chat(text)`, the last answered with
 * `message {user, message}` written, one write() each, to every member of the sender's room, the
 * sender included. It decodes no JSON (the name and the text are copied as they came) and keeps
 * no history. Whatever `parley bench` reports for it beyond floor.c's figures is the cost of the
 * protocol's framing and of the instrument itself.
 *
 * Usage: floor-sio PORT [CPU]
 *   Listens on 127.0.0.1:PORT (pinned to CPU, if given) until it is killed. WebSocket transport
 *   only, Engine.IO v4, the main namespace only. Prints "listening" to standard error when ready.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MAX_FDS = 65536, INPUT_LIMIT = 65536, TOKEN_LIMIT = 256, PING_INTERVAL = 25 };

/* --- SHA-1 (FIPS 180-4) and base64, for Sec-WebSocket-Accept -------------------------------- */

static uint32_t rotate_left(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1(const unsigned char *data, size_t length, unsigned char digest[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t padded = ((length + 8) / 64 + 1) * 64;
    unsigned char *message = calloc(padded, 1);
    memcpy(message, data, length);
    message[length] = 0x80;
    uint64_t bits = (uint64_t)length * 8;
    for (int i = 0; i < 8; i++) message[padded - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t block = 0; block < padded; block += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++) {
            const unsigned char *p = message + block + 4 * i;
            w[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        }
        for (int i = 16; i < 80; i++) w[i] = rotate_left(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            uint32_t t = rotate_left(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rotate_left(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    free(message);
    for (int i = 0; i < 20; i++) digest[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const unsigned char *data, size_t length, char *out) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < length; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < length ? (uint32_t)data[i + 1] << 8 : 0) | (i + 2 < length ? data[i + 2] : 0);
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < length ? alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < length ? alphabet[v & 63] : '=';
    }
    out[o] = 0;
}

/* --- connections and rooms -------------------------------------------------------------------- */

struct room {
    char name[TOKEN_LIMIT];
    int *members, count, capacity;
    struct room *next;
};

struct connection {
    int open, upgraded;
    unsigned char *input;
    size_t length;
    char name[TOKEN_LIMIT]; /* the login, as its JSON string token; empty before login */
    struct room *room;
};

static struct connection connections[MAX_FDS];
static struct room *rooms;
static unsigned long next_sid;

static struct room *room_named(const char *name) {
    for (struct room *room = rooms; room; room = room->next)
        if (strcmp(room->name, name) == 0) return room;
    struct room *room = calloc(1, sizeof *room);
    snprintf(room->name, sizeof room->name, "%s", name);
    room->next = rooms;
    rooms = room;
    return room;
}

static void leave_room(int fd) {
    struct room *room = connections[fd].room;
    if (!room) return;
    for (int i = 0; i < room->count; i++)
        if (room->members[i] == fd) { room->members[i] = room->members[--room->count]; break; }
    connections[fd].room = NULL;
}

static void join_room(int fd, const char *name) {
    leave_room(fd);
    struct room *room = room_named(name);
    if (room->count == room->capacity) {
        room->capacity = room->capacity ? room->capacity * 2 : 64;
        room->members = realloc(room->members, sizeof(int) * room->capacity);
    }
    room->members[room->count++] = fd;
    connections[fd].room = room;
}

static void drop(int epoll, int fd) {
    leave_room(fd);
    free(connections[fd].input);
    memset(&connections[fd], 0, sizeof connections[fd]);
    epoll_ctl(epoll, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
}

/* Writes all of `data`, or gives up on a client that is gone (no SIGPIPE: a client that leaves
 * while it is being written to must not end the server). Blocking: a client that stops reading
 * stalls the relay, which is no server for anything but `parley bench`. */
static void send_all(int fd, const void *data, size_t length) {
    const char *p = data;
    while (length > 0) {
        ssize_t n = send(fd, p, length, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        length -= (size_t)n;
    }
}

/* A whole text frame, server to client (unmasked): header then payload, into `out`. */
static size_t text_frame(const char *payload, size_t length, unsigned char *out) {
    size_t h = 0;
    out[h++] = 0x81;
    if (length < 126) {
        out[h++] = (unsigned char)length;
    } else if (length < 65536) {
        out[h++] = 126;
        out[h++] = (unsigned char)(length >> 8);
        out[h++] = (unsigned char)length;
    } else {
        out[h++] = 127;
        for (int i = 7; i >= 0; i--) out[h++] = (unsigned char)((uint64_t)length >> (8 * i));
    }
    memcpy(out + h, payload, length);
    return h + length;
}

static void send_text(int fd, const char *payload) {
    size_t length = strlen(payload);
    unsigned char *frame = malloc(length + 14);
    send_all(fd, frame, text_frame(payload, length, frame));
    free(frame);
}

/* --- the handshake ---------------------------------------------------------------------------- */

/* The value of header `name` (case-insensitive) in `request`, into `out`; 0 when absent. */
static int header(const char *request, const char *name, char *out, size_t size) {
    size_t n = strlen(name);
    for (const char *line = strstr(request, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *start = line + 2;
        if (strncasecmp(start, name, n) != 0 || start[n] != ':') continue;
        start += n + 1;
        while (*start == ' ') start++;
        size_t length = strcspn(start, "\r\n");
        if (length >= size) return 0;
        memcpy(out, start, length);
        out[length] = 0;
        return 1;
    }
    return 0;
}

/* Answers a complete HTTP request: a WebSocket of Engine.IO v4 is accepted, anything else refused. */
static int upgrade(int fd, char *request) {
    char key[128], accepted[64], response[256], open[192];
    size_t line = strcspn(request, "\r\n"); /* the request line: what the query must be in */
    const char *target = memchr(request, ' ', line);
    int websocket = target && strncmp(target + 1, "/socket.io/", 11) == 0 && memmem(request, line, "transport=websocket", 19)
        && memmem(request, line, "EIO=4", 5) && header(request, "Sec-WebSocket-Key", key, sizeof key - 40);
    if (!websocket) {
        static const char refusal[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        send_all(fd, refusal, sizeof refusal - 1);
        return 0;
    }
    unsigned char digest[20];
    strcat(key, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    sha1((const unsigned char *)key, strlen(key), digest);
    base64(digest, 20, accepted);
    int n = snprintf(response, sizeof response,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accepted);
    send_all(fd, response, (size_t)n);
    snprintf(open, sizeof open,
             "0{\"sid\":\"floor%015lu\",\"upgrades\":[],\"pingInterval\":%d000,\"pingTimeout\":20000,\"maxPayload\":1000000}",
             next_sid++, PING_INTERVAL);
    send_text(fd, open);
    return 1;
}

/* --- Socket.IO events ------------------------------------------------------------------------- */

/* The JSON string token at `p` (quotes included, escapes kept) into `out`; its end, or NULL. */
static const char *string_token(const char *p, const char *end, char *out, size_t size) {
    if (p >= end || *p != '"') return NULL;
    const char *q = p + 1;
    while (q < end && *q != '"') q += *q == '\\' ? 2 : 1;
    if (q >= end || (size_t)(q + 1 - p) >= size) return NULL;
    memcpy(out, p, (size_t)(q + 1 - p));
    out[q + 1 - p] = 0;
    return q + 1;
}

/* `42["event",argument,...]`: the tutorial's three events, each with a string argument. */
static void event(int fd, const char *packet, size_t length) {
    const char *end = packet + length;
    char name[TOKEN_LIMIT], argument[TOKEN_LIMIT];
    const char *p = string_token(packet + 3, end, name, sizeof name);
    if (!p || p >= end || *p != ',' || !string_token(p + 1, end, argument, sizeof argument)) return;
    struct connection *c = &connections[fd];
    if (strcmp(name, "\"login\"") == 0) {
        snprintf(c->name, sizeof c->name, "%s", argument);
    } else if (strcmp(name, "\"join\"") == 0) {
        join_room(fd, argument);
    } else if (strcmp(name, "\"chat\"") == 0 && c->room) {
        char payload[3 * TOKEN_LIMIT];
        int n = c->name[0] ? snprintf(payload, sizeof payload, "42[\"message\",{\"user\":%s,\"message\":%s}]", c->name, argument)
                           : snprintf(payload, sizeof payload, "42[\"message\",{\"message\":%s}]", argument);
        unsigned char frame[3 * TOKEN_LIMIT + 14];
        size_t size = text_frame(payload, (size_t)n, frame);
        struct room *room = c->room;
        for (int i = 0; i < room->count; i++) send_all(room->members[i], frame, size);
    }
}

/* One Engine.IO packet from a client's text frame. */
static void packet(int fd, const char *data, size_t length) {
    if (length >= 2 && data[0] == '4' && data[1] == '0') {
        char reply[64];
        snprintf(reply, sizeof reply, "40{\"sid\":\"floor%015d\"}", fd);
        send_text(fd, reply);
    } else if (length > 3 && data[0] == '4' && data[1] == '2' && data[2] == '[') {
        event(fd, data, length);
    }
}

/* Handles the complete frames at the start of the connection's input; returns 0 to close it. */
static int frames(int fd) {
    struct connection *c = &connections[fd];
    size_t at = 0;
    while (c->length - at >= 2) {
        unsigned char *f = c->input + at;
        int opcode = f[0] & 15, masked = f[1] & 128;
        size_t header = 2, length = f[1] & 127;
        if (length == 126) {
            if (c->length - at < 4) break;
            length = (size_t)f[2] << 8 | f[3];
            header = 4;
        } else if (length == 127) {
            if (c->length - at < 10) break;
            length = 0;
            for (int i = 0; i < 8; i++) length = length << 8 | f[2 + i];
            header = 10;
        }
        if (!masked || !(f[0] & 128) || length > INPUT_LIMIT) return 0;
        if (c->length - at < header + 4 + length) break;
        unsigned char *mask = f + header, *payload = f + header + 4;
        for (size_t i = 0; i < length; i++) payload[i] ^= mask[i % 4];
        if (opcode == 1) packet(fd, (const char *)payload, length);
        else if (opcode == 8) return 0;
        else if (opcode == 9) { unsigned char pong[2] = {0x8A, 0}; send_all(fd, pong, 2); }
        at += header + 4 + length;
    }
    memmove(c->input, c->input + at, c->length - at);
    c->length -= at;
    return 1;
}

/* Reads what the client sent and handles it; returns 0 to close the connection. */
static int readable(int fd) {
    struct connection *c = &connections[fd];
    if (c->length == INPUT_LIMIT) return 0;
    ssize_t n = read(fd, c->input + c->length, INPUT_LIMIT - c->length);
    if (n <= 0) return n < 0 && errno == EINTR;
    c->length += (size_t)n;
    if (c->upgraded) return frames(fd);
    c->input[c->length] = 0;
    char *end = strstr((char *)c->input, "\r\n\r\n");
    if (!end) return 1;
    if (!upgrade(fd, (char *)c->input)) return 0;
    c->upgraded = 1;
    size_t rest = c->length - (size_t)(end + 4 - (char *)c->input);
    memmove(c->input, end + 4, rest);
    c->length = rest;
    return frames(fd);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: floor-sio PORT [CPU]\n");
        return 2;
    }
    if (argc > 2) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(atoi(argv[2]), &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 4096) != 0) {
        perror("listen");
        return 1;
    }
    int epoll = epoll_create1(0);
    struct epoll_event ready = {.events = EPOLLIN, .data.fd = listener}, events[256];
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &ready);
    fprintf(stderr, "listening\n");
    time_t last_ping = time(NULL);
    for (;;) {
        int count = epoll_wait(epoll, events, 256, 1000);
        for (int i = 0; i < count; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int client = accept(listener, NULL, NULL);
                if (client < 0) continue;
                if (client >= MAX_FDS) { close(client); continue; }
                setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                connections[client].open = 1;
                connections[client].input = malloc(INPUT_LIMIT + 1);
                struct epoll_event event = {.events = EPOLLIN, .data.fd = client};
                epoll_ctl(epoll, EPOLL_CTL_ADD, client, &event);
            } else if (connections[fd].open && !readable(fd)) {
                drop(epoll, fd);
            }
        }
        if (time(NULL) - last_ping >= PING_INTERVAL) {
            last_ping = time(NULL);
            for (int fd = 0; fd < MAX_FDS; fd++)
                if (connections[fd].upgraded) send_text(fd, "2");
        }
    }
}
