/* Runtime: mailboxes, FIFO per task, fairness between tasks, timers,
 * cross-thread posts, the I/O thread — on an executor without network. */
#include "cu_test.h"
#include "nines/errors.h"
#include "nines_net.pb-c.h"
#include "runtime/rt.h"

#include <pthread.h>
#include <string.h>
#include <unistd.h>

struct rec {
    int n;
    uint32_t types[4096];
    uint64_t cookies[4096];
    int order_tag[4096];
};

static void rec_handler(struct rt *rt, void *st, struct rt_msg *m)
{
    struct rec *r = st;
    if (m->type == RT_MSG_START)
        return;
    if (r->n < 4096) {
        r->types[r->n] = m->type;
        r->cookies[r->n] = m->cookie;
        r->n++;
    }
}

static struct rt *mk_rt(void)
{
    struct rt_config cfg = {0};
    struct rt *rt = NULL;
    CU_ASSERT_EQUAL_FATAL(rt_create(&rt, &cfg), 0);
    return rt;
}

static void test_local_fifo(void)
{
    struct rt *rt = mk_rt();
    struct rec r = {0};
    CU_ASSERT_EQUAL(rt_task_add(rt, RT_SVC_SUP, "rec", rec_handler, &r), 0);
    CU_ASSERT_EQUAL(rt_task_add(rt, RT_SVC_SUP, "dup", rec_handler, &r), NINES_EEXIST);
    for (int i = 0; i < 1000; i++) {
        struct rt_msg *m = rt_msg_new(rt, NINES__MSG_TYPE__PING_REQ);
        Nines__PingReq *b = RT_BODY(m, Nines__PingReq, nines__ping_req__init);
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        b->seq = (uint64_t)i;
        m->cookie = (uint64_t)i;
        CU_ASSERT_EQUAL(rt_send(rt, 0, RT_SVC_SUP, m), 0);
    }
    while (r.n < 1000)
        rt_step(rt, 10);
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(r.cookies[i], (uint64_t)i);
    struct rt_stats st;
    rt_get_stats(rt, &st);
    CU_ASSERT_EQUAL(st.msgs_local, 1000);
    CU_ASSERT_TRUE(st.msgs_handled >= 1000);
    rt_destroy(rt);
}

/* Two busy tasks: neither starves the other (batches alternate). */
struct fair {
    struct rt *rt;
    int count[RT_SVC_MAX];
    int seq[8192];
    int n;
};
static struct fair fair_st;

static void fair_handler(struct rt *rt, void *st, struct rt_msg *m)
{
    struct fair *f = &fair_st;
    if (m->type == RT_MSG_START)
        return;
    int svc = (int)(uintptr_t)st;
    f->count[svc]++;
    if (f->n < 8192)
        f->seq[f->n++] = svc;
}

static void test_fairness(void)
{
    struct rt *rt = mk_rt();
    memset(&fair_st, 0, sizeof fair_st);
    rt_task_add(rt, RT_SVC_TXC, "a", fair_handler, (void *)(uintptr_t)RT_SVC_TXC);
    rt_task_add(rt, RT_SVC_KERN, "b", fair_handler, (void *)(uintptr_t)RT_SVC_KERN);
    rt_step(rt, 0); /* START messages */
    for (int i = 0; i < 1000; i++)
        rt_post_local(rt, RT_SVC_TXC, rt_msg_new(rt, RT_MSG_USER));
    for (int i = 0; i < 1000; i++)
        rt_post_local(rt, RT_SVC_KERN, rt_msg_new(rt, RT_MSG_USER));
    while (fair_st.count[RT_SVC_TXC] + fair_st.count[RT_SVC_KERN] < 2000)
        rt_step(rt, 10);
    /* Within the first 200 handled, both tasks have run. */
    int a = 0, b = 0;
    for (int i = 0; i < 200; i++)
        if (fair_st.seq[i] == RT_SVC_TXC)
            a++;
        else
            b++;
    CU_ASSERT_TRUE(a > 0 && b > 0);
    rt_destroy(rt);
}

static void test_timers(void)
{
    struct rt *rt = mk_rt();
    struct rec r = {0};
    rt_task_add(rt, RT_SVC_SUP, "rec", rec_handler, &r);
    int64_t t3 = rt_timer_add(rt, RT_SVC_SUP, 30000, 3);
    int64_t t1 = rt_timer_add(rt, RT_SVC_SUP, 10000, 1);
    int64_t t2 = rt_timer_add(rt, RT_SVC_SUP, 20000, 2);
    int64_t tx = rt_timer_add(rt, RT_SVC_SUP, 15000, 99);
    CU_ASSERT_TRUE(t1 > 0 && t2 > 0 && t3 > 0 && tx > 0);
    CU_ASSERT_TRUE(rt_timer_cancel(rt, tx));
    CU_ASSERT_FALSE(rt_timer_cancel(rt, tx));
    CU_ASSERT_TRUE(rt_timer_add(rt, RT_SVC_NONE, 1, 0) < 0);
    for (int guard = 0; r.n < 3 && guard < 1000; guard++)
        rt_step(rt, 100);
    CU_ASSERT_EQUAL_FATAL(r.n, 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(r.types[i], RT_MSG_TIMER);
        CU_ASSERT_EQUAL(r.cookies[i], (uint64_t)(i + 1)); /* deadline order, 99 cancelled */
    }
    rt_destroy(rt);
}

/* Many timers with random delays and random cancellations: exactly the
 * uncancelled ones fire, in deadline order. */
static void test_timer_heap_random(void)
{
    struct rt *rt = mk_rt();
    static struct rec r;
    memset(&r, 0, sizeof r);
    rt_task_add(rt, RT_SVC_SUP, "rec", rec_handler, &r);
    srand((unsigned)cu_seed(7));
    enum { N = 600 };
    static int64_t ids[N];
    static uint64_t delay[N];
    static bool cancelled[N];
    int live = 0;
    for (int i = 0; i < N; i++) {
        delay[i] = (uint64_t)(rand() % 20000);
        ids[i] = rt_timer_add(rt, RT_SVC_SUP, delay[i], (uint64_t)i);
        cancelled[i] = false;
    }
    for (int i = 0; i < N; i++)
        if (rand() % 3 == 0) {
            CU_ASSERT_TRUE(rt_timer_cancel(rt, ids[i]));
            cancelled[i] = true;
        }
    for (int i = 0; i < N; i++)
        live += !cancelled[i];
    for (int guard = 0; r.n < live && guard < 100000; guard++)
        rt_step(rt, 5);
    rt_step(rt, 30); /* nothing more may fire */
    CU_ASSERT_EQUAL_FATAL(r.n, live);
    for (int k = 0; k < r.n; k++) {
        uint64_t c = r.cookies[k];
        CU_ASSERT_FALSE(cancelled[c]);
        if (k > 0)
            CU_ASSERT_TRUE(delay[r.cookies[k - 1]] <= delay[c]);
    }
    rt_destroy(rt);
}

static void *poster(void *arg)
{
    struct rt *rt = arg;
    for (uint64_t i = 0; i < 500; i++)
        rt_post_from_thread(rt, RT_SVC_SUP, i);
    return NULL;
}

static void test_cross_thread(void)
{
    struct rt *rt = mk_rt();
    struct rec r = {0};
    rt_task_add(rt, RT_SVC_SUP, "rec", rec_handler, &r);
    pthread_t th;
    pthread_create(&th, NULL, poster, rt);
    for (int guard = 0; r.n < 500 && guard < 100000; guard++)
        rt_step(rt, 100); /* the posts wake the sleeping loop */
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL_FATAL(r.n, 500);
    for (int i = 0; i < 500; i++) {
        CU_ASSERT_EQUAL(r.types[i], RT_MSG_USER);
        CU_ASSERT_EQUAL(r.cookies[i], (uint64_t)i); /* posting order kept */
    }
    rt_destroy(rt);
}

static pthread_t main_thread;
static int io_fn(void *arg)
{
    int *v = arg;
    /* runs on the I/O thread, not the executor */
    return pthread_equal(pthread_self(), main_thread) ? -1 : *v * 2;
}

static void test_io_thread(void)
{
    struct rt *rt = mk_rt();
    struct rec r = {0};
    rt_task_add(rt, RT_SVC_SUP, "rec", rec_handler, &r);
    main_thread = pthread_self();
    int vals[16];
    struct rt_io_req reqs[16];
    for (int i = 0; i < 16; i++) {
        vals[i] = i;
        reqs[i] = (struct rt_io_req){.fn = io_fn, .arg = &vals[i], .svc = RT_SVC_SUP};
        CU_ASSERT_EQUAL(rt_io_submit(rt, &reqs[i]), 0);
    }
    struct rt_io_req bad = {.fn = NULL, .svc = RT_SVC_SUP};
    CU_ASSERT_EQUAL(rt_io_submit(rt, &bad), NINES_EINVAL);
    for (int guard = 0; r.n < 16 && guard < 100000; guard++)
        rt_step(rt, 100);
    CU_ASSERT_EQUAL_FATAL(r.n, 16);
    for (int i = 0; i < 16; i++) {
        CU_ASSERT_EQUAL(r.types[i], RT_MSG_IO_DONE);
        struct rt_io_req *q = (struct rt_io_req *)(uintptr_t)r.cookies[i];
        CU_ASSERT_PTR_EQUAL(q, &reqs[i]); /* completions in submission order */
        CU_ASSERT_EQUAL(q->result, i * 2);
    }
    rt_destroy(rt);
}

/* A handler may keep a message past its return and free it later. */
static struct rt_msg *kept_msg;
static void keep_handler(struct rt *rt, void *st, struct rt_msg *m)
{
    if (m->type == RT_MSG_USER) {
        rt_msg_keep(m);
        kept_msg = m;
    }
}

static void test_keep(void)
{
    struct rt *rt = mk_rt();
    rt_task_add(rt, RT_SVC_TXC, "keep", keep_handler, NULL);
    struct rt_msg *m = rt_msg_new(rt, RT_MSG_USER);
    char *payload = rt_msg_alloc(m, 64);
    strcpy(payload, "still here");
    rt_post_local(rt, RT_SVC_TXC, m);
    rt_step(rt, 0);
    CU_ASSERT_PTR_EQUAL_FATAL(kept_msg, m);
    /* new messages do not reuse it */
    struct rt_msg *m2 = rt_msg_new(rt, RT_MSG_USER);
    CU_ASSERT_PTR_NOT_EQUAL(m2, m);
    CU_ASSERT_STRING_EQUAL(payload, "still here");
    rt_msg_free(rt, m2);
    rt_msg_free(rt, kept_msg);
    rt_destroy(rt);
}

void cu_register(void)
{
    static const struct cu_case cases[] = {
        {"local messages are FIFO", test_local_fifo},
        {"tasks share the executor fairly", test_fairness},
        {"timers fire in deadline order, cancel works", test_timers},
        {"random timers and cancels fire exactly, in order", test_timer_heap_random},
        {"cross-thread posts wake the loop, in order", test_cross_thread},
        {"I/O thread runs disk work and reports completion", test_io_thread},
        {"handler keeps a message", test_keep},
        {NULL, NULL},
    };
    cu_add_suite("runtime", NULL, NULL, cases);
}
