/* net framing and Envelope codec: stream decoder under random chunking,
 * bad lengths and truncation; hand-written Envelope packing checked
 * byte-for-byte against protobuf-c; parser fuzzed with garbage. */
#include "cu_test.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../net/envelope.h"
#include "../../net/frame.h"

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int init_rng(void)
{
    rng = cu_seed(0x5eedf00d) | 1;
    return 0;
}

/* ---- frame decoder ---- */

struct collect {
    size_t n;
    size_t lens[512];
    uint8_t first[512], last[512];
    int stop_after;   /* return 7 after this many frames (0 = never) */
};

static int collect_fn(void *ctx, const uint8_t *f, size_t len)
{
    struct collect *c = ctx;
    if (c->n < 512) {
        c->lens[c->n] = len;
        c->first[c->n] = f[0];
        c->last[c->n] = f[len - 1];
    }
    c->n++;
    if (c->stop_after && (int)c->n == c->stop_after)
        return 7;
    return 0;
}

static void test_random_chunking(void)
{
    for (int round = 0; round < 50; round++) {
        size_t nframes = 1 + rnd() % 300, total = 0;
        size_t lens[300];
        for (size_t i = 0; i < nframes; i++) {
            lens[i] = 1 + rnd() % (round % 5 == 0 ? 70000 : 300);
            total += 4 + lens[i];
        }
        uint8_t *s = malloc(total), *p = s;
        for (size_t i = 0; i < nframes; i++) {
            net_frame_put_len(p, (uint32_t)lens[i]);
            p += 4;
            for (size_t k = 0; k < lens[i]; k++)
                p[k] = (uint8_t)(i + k);
            p += lens[i];
        }
        struct net_fdec d;
        net_fdec_init(&d, 100000);
        struct collect c = {0};
        size_t off = 0;
        while (off < total) {
            size_t k = rnd() % 4 == 0 ? 1 + rnd() % 5 : 1 + rnd() % 9000;
            if (k > total - off)
                k = total - off;
            CU_ASSERT_EQUAL_FATAL(net_fdec_feed(&d, s + off, k, collect_fn, &c), 0);
            off += k;
        }
        CU_ASSERT_EQUAL(net_fdec_eof(&d), 0);
        CU_ASSERT_EQUAL_FATAL(c.n, nframes);
        for (size_t i = 0; i < nframes; i++) {
            CU_ASSERT_EQUAL(c.lens[i], lens[i]);
            CU_ASSERT_EQUAL(c.first[i], (uint8_t)i);
            CU_ASSERT_EQUAL(c.last[i], (uint8_t)(i + lens[i] - 1));
        }
        net_fdec_free(&d);
        free(s);
    }
}

static void test_oversize_and_zero(void)
{
    struct net_fdec d;
    struct collect c = {0};
    uint8_t b[8];
    net_fdec_init(&d, 1024);
    net_frame_put_len(b, 1025);
    /* prefix split across two chunks */
    CU_ASSERT_EQUAL(net_fdec_feed(&d, b, 2, collect_fn, &c), 0);
    CU_ASSERT_EQUAL(net_fdec_feed(&d, b + 2, 2, collect_fn, &c), NINES_ETOOBIG);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "1025 exceeds max_frame_bytes 1024"));
    /* a failed stream stays failed */
    CU_ASSERT_EQUAL(net_fdec_feed(&d, b, 4, collect_fn, &c), NINES_EPROTO);
    net_fdec_free(&d);

    net_fdec_init(&d, 1024);
    net_frame_put_len(b, 0xffffffffu);
    CU_ASSERT_EQUAL(net_fdec_feed(&d, b, 4, collect_fn, &c), NINES_ETOOBIG);
    net_fdec_free(&d);

    net_fdec_init(&d, 1024);
    net_frame_put_len(b, 1024); /* exactly the limit is fine */
    CU_ASSERT_EQUAL(net_fdec_feed(&d, b, 4, collect_fn, &c), 0);
    net_fdec_free(&d);

    net_fdec_init(&d, 1024);
    net_frame_put_len(b, 0);
    CU_ASSERT_EQUAL(net_fdec_feed(&d, b, 4, collect_fn, &c), NINES_EPROTO);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "zero-length"));
    CU_ASSERT_EQUAL(c.n, 0);
    net_fdec_free(&d);
}

static void test_truncation(void)
{
    struct net_fdec d;
    struct collect c = {0};
    uint8_t b[64];
    net_frame_put_len(b, 20);
    memset(b + 4, 0xab, 20);
    net_fdec_init(&d, 1024);
    CU_ASSERT_EQUAL(net_fdec_eof(&d), 0);
    CU_ASSERT_EQUAL(net_fdec_feed(&d, b, 3, collect_fn, &c), 0);
    CU_ASSERT_EQUAL(net_fdec_eof(&d), NINES_ETRUNC);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "length prefix (3 of 4"));
    CU_ASSERT_EQUAL(net_fdec_feed(&d, b + 3, 11, collect_fn, &c), 0);
    CU_ASSERT_EQUAL(net_fdec_eof(&d), NINES_ETRUNC);
    CU_ASSERT_PTR_NOT_NULL(strstr(nines_errdetail(), "(10 of 20 bytes)"));
    CU_ASSERT_EQUAL(net_fdec_feed(&d, b + 14, 10, collect_fn, &c), 0);
    CU_ASSERT_EQUAL(net_fdec_eof(&d), 0);
    CU_ASSERT_EQUAL(c.n, 1);
    net_fdec_free(&d);
}

static void test_callback_stops(void)
{
    uint8_t b[3 * 6];
    for (int i = 0; i < 3; i++) {
        net_frame_put_len(b + 6 * i, 2);
        b[6 * i + 4] = b[6 * i + 5] = (uint8_t)i;
    }
    struct net_fdec d;
    struct collect c = {.stop_after = 2};
    net_fdec_init(&d, 1024);
    CU_ASSERT_EQUAL(net_fdec_feed(&d, b, sizeof b, collect_fn, &c), 7);
    CU_ASSERT_EQUAL(c.n, 2);
    net_fdec_free(&d);
}

/* ---- envelope ---- */

static void rnd_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

static void test_envelope_roundtrip(void)
{
    static uint8_t payload[5000], mine[6000], theirs[6000], packed_body[6000];
    for (int i = 0; i < 2000; i++) {
        uint32_t sender = (rnd() % 3 == 0) ? 0 : (uint32_t)(rnd() >> (rnd() % 64 / 2 + 32));
        uint64_t epoch = (rnd() % 3 == 0) ? 0 : rnd() >> (rnd() % 64);
        uint32_t type = (rnd() % 5 == 0) ? 0 : (uint32_t)(rnd() % 300);
        size_t plen = rnd() % 4 == 0 ? 0 : rnd() % sizeof payload;
        rnd_bytes(payload, plen);
        Nines__PingReq ping = NINES__PING_REQ__INIT;
        ping.seq = rnd() % 2 ? rnd() : 0;
        ping.payload.data = payload;
        ping.payload.len = plen;
        size_t blen = protobuf_c_message_get_packed_size(&ping.base);
        size_t n = net_env_size(sender, epoch, type, blen);
        CU_ASSERT_FATAL(n <= sizeof mine);
        CU_ASSERT_EQUAL_FATAL(net_env_pack(mine, sender, epoch, type, &ping.base, blen), n);

        /* protobuf-c packs the same Envelope byte for byte */
        CU_ASSERT_EQUAL_FATAL(protobuf_c_message_pack(&ping.base, packed_body), blen);
        Nines__Envelope env = NINES__ENVELOPE__INIT;
        env.version = NINES__PROTO_VERSION__PROTO_VERSION_CURRENT;
        env.sender = sender;
        env.epoch = epoch;
        env.type = type;
        env.body.data = packed_body;
        env.body.len = blen;
        CU_ASSERT_EQUAL_FATAL(nines__envelope__get_packed_size(&env), n);
        nines__envelope__pack(&env, theirs);
        CU_ASSERT_EQUAL(memcmp(mine, theirs, n), 0);

        /* protobuf-c unpacks ours identically */
        Nines__Envelope *u = nines__envelope__unpack(NULL, n, mine);
        CU_ASSERT_PTR_NOT_NULL_FATAL(u);
        CU_ASSERT_EQUAL(u->version, 1);
        CU_ASSERT_EQUAL(u->sender, sender);
        CU_ASSERT_EQUAL(u->epoch, epoch);
        CU_ASSERT_EQUAL(u->type, type);
        CU_ASSERT_EQUAL_FATAL(u->body.len, blen);
        CU_ASSERT(blen == 0 || memcmp(u->body.data, packed_body, blen) == 0);
        nines__envelope__free_unpacked(u, NULL);

        /* and so does our parser, without copying the body */
        struct net_msg_in m;
        CU_ASSERT_EQUAL_FATAL(net_env_parse(mine, n, &m), 0);
        CU_ASSERT_EQUAL(m.sender, sender);
        CU_ASSERT_EQUAL(m.epoch, epoch);
        CU_ASSERT_EQUAL(m.type, type);
        CU_ASSERT_EQUAL(m.body_len, blen);
        CU_ASSERT(blen == 0 || (m.body >= mine && m.body + blen <= mine + n));
        if (blen) {
            Nines__PingReq *pr = nines__ping_req__unpack(NULL, m.body_len, m.body);
            CU_ASSERT_PTR_NOT_NULL_FATAL(pr);
            CU_ASSERT_EQUAL(pr->seq, ping.seq);
            CU_ASSERT_EQUAL(pr->payload.len, plen);
            nines__ping_req__free_unpacked(pr, NULL);
        }
    }
}

static void test_envelope_unknown_fields(void)
{
    /* version 1, unknown varint f6, fixed64 f7, bytes f8, fixed32 f9,
     * type 5, unknown f1000 varint, body "xy", sender 3 repeated (last wins) */
    const uint8_t b[] = {0x08, 0x01, 0x30, 0x96, 0x01, 0x39, 1, 2, 3, 4, 5, 6, 7, 8,
                         0x42, 0x03, 'a', 'b', 'c', 0x4d, 1, 2, 3, 4, 0x20, 0x05,
                         0xc0, 0x3e, 0x01, 0x2a, 0x02, 'x', 'y', 0x10, 0x02, 0x10, 0x03};
    struct net_msg_in m;
    CU_ASSERT_EQUAL_FATAL(net_env_parse(b, sizeof b, &m), 0);
    CU_ASSERT_EQUAL(m.type, 5);
    CU_ASSERT_EQUAL(m.sender, 3);
    CU_ASSERT_EQUAL(m.body_len, 2);
    CU_ASSERT_EQUAL(memcmp(m.body, "xy", 2), 0);
    Nines__Envelope *u = nines__envelope__unpack(NULL, sizeof b, b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(u);
    CU_ASSERT_EQUAL(u->type, 5);
    CU_ASSERT_EQUAL(u->sender, 3);
    nines__envelope__free_unpacked(u, NULL);

    /* wrong version is reported as such; the _ver variant returns it */
    const uint8_t v2[] = {0x08, 0x02, 0x20, 0x04};
    CU_ASSERT_EQUAL(net_env_parse(v2, sizeof v2, &m), NINES_EVERSION);
    uint32_t ver = 0;
    CU_ASSERT_EQUAL(net_env_parse_ver(v2, sizeof v2, &m, &ver), 0);
    CU_ASSERT_EQUAL(ver, 2);
    CU_ASSERT_EQUAL(m.type, 4);
}

struct bad_env {
    uint8_t b[16];
    size_t n;
    const char *expect;
};

static void test_envelope_malformed(void)
{
    static const struct bad_env bad[] = {
        {{0x08}, 1, "runs past the end"},
        {{0x08, 0x81}, 2, "runs past the end"},
        {{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, 11, "overflows"},
        {{0x2a, 0x05, 'a'}, 3, "body length 5 runs past the end"},
        {{0x0a, 0x00}, 2, "field 1 has wire type 2, expected varint"},
        {{0x28, 0x01}, 2, "body has wire type 0"},
        {{0x00, 0x01}, 2, "invalid field number 0"},
        {{0x33}, 1, "group wire type 3"},
        {{0x36}, 1, "invalid wire type 6"},
        {{0x31, 1, 2}, 3, "fixed64) truncated"},
        {{0x35, 1}, 2, "fixed32) truncated"},
        {{0x32, 0x7f, 1}, 3, "field 6 length 127 runs past the end"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct net_msg_in m;
        int rc = net_env_parse(bad[i].b, bad[i].n, &m);
        CU_ASSERT_EQUAL(rc, NINES_EPROTO);
        if (!strstr(nines_errdetail(), bad[i].expect)) {
            printf("\n  case %zu: detail '%s' lacks '%s'\n", i, nines_errdetail(), bad[i].expect);
            CU_FAIL("detail");
        }
    }
}

static void test_envelope_fuzz(void)
{
    static uint8_t buf[600], body[400];
    unsigned agree = 0, both_ok = 0;
    int iters = getenv("NINES_LONG") ? 2000000 : 200000;
    for (int i = 0; i < iters; i++) {
        size_t n;
        if (i % 2 == 0) {
            n = rnd() % sizeof buf;
            rnd_bytes(buf, n);
        } else {
            /* mutate a valid envelope: flip bits, cut, or splice bytes */
            Nines__SinkReq s = NINES__SINK_REQ__INIT;
            size_t bl = rnd() % 300;
            rnd_bytes(body, bl);
            s.seq = rnd();
            s.payload.data = body;
            s.payload.len = bl;
            size_t blen = protobuf_c_message_get_packed_size(&s.base);
            n = net_env_pack(buf, (uint32_t)rnd(), rnd(), (uint32_t)rnd() % 20, &s.base, blen);
            int muts = 1 + (int)(rnd() % 4);
            for (int k = 0; k < muts; k++) {
                switch (rnd() % 3) {
                case 0:
                    buf[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
                    break;
                case 1:
                    n = rnd() % (n + 1);
                    break;
                default:
                    if (n)
                        buf[rnd() % n] = (uint8_t)rnd();
                    break;
                }
                if (n == 0)
                    break;
            }
        }
        struct net_msg_in m;
        uint32_t ver;
        int rc = net_env_parse_ver(buf, n, &m, &ver);
        CU_ASSERT(rc == 0 || rc == NINES_EPROTO);
        if (rc == 0) {
            CU_ASSERT(m.body_len == 0 || (m.body >= buf && m.body + m.body_len <= buf + n));
        }
        Nines__Envelope *u = nines__envelope__unpack(NULL, n, buf);
        if (rc == 0 && u) {
            both_ok++;
            if (u->version == ver && u->sender == m.sender && u->epoch == m.epoch &&
                u->type == m.type && u->body.len == m.body_len &&
                (m.body_len == 0 || memcmp(u->body.data, m.body, m.body_len) == 0))
                agree++;
        }
        if (u)
            nines__envelope__free_unpacked(u, NULL);
    }
    printf("\n  fuzz: %d inputs, %u parsed by both, %u identical\n", iters, both_ok, agree);
    CU_ASSERT(both_ok > 0);
    CU_ASSERT_EQUAL(agree, both_ok);
}

void cu_register(void)
{
    static const struct cu_case frame_cases[] = {
        {"random chunking", test_random_chunking},
        {"oversize and zero length", test_oversize_and_zero},
        {"truncation at eof", test_truncation},
        {"callback stops feeding", test_callback_stops},
        {NULL, NULL},
    };
    static const struct cu_case env_cases[] = {
        {"pack == protobuf-c, parse round trip", test_envelope_roundtrip},
        {"unknown fields skipped", test_envelope_unknown_fields},
        {"malformed rejected with detail", test_envelope_malformed},
        {"fuzz never crashes, agrees with protobuf-c", test_envelope_fuzz},
        {NULL, NULL},
    };
    cu_add_suite("net_frame", init_rng, NULL, frame_cases);
    cu_add_suite("net_envelope", init_rng, NULL, env_cases);
}
