/* ninesarb — the arbitrator of a ninesdb cluster:
 *   ninesarb --config FILE [--data DIR] [--log debug|info|warn|error]
 * Listens on the cluster file's `arbitrator HOST:PORT` and keeps its grant
 * record in DIR (--data, else the arbitrator line's `data DIR`, else the
 * current folder). Runs until SIGTERM/SIGINT. Exit: 0 stopped by a signal,
 * 1 failed while serving, 2 usage, configuration or grant-record error. */
#include "arb.h"

#include "conf.h"
#include "nines/errors.h"
#include "nlog.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct arb_srv *the_srv;
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    arb_srv_wake(the_srv); /* one eventfd write: async-signal-safe */
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ninesarb --config FILE [--data DIR] [--log debug|info|warn|error]\n"
               "Runs the arbitrator named by FILE's 'arbitrator HOST:PORT' line.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data", required_argument, NULL, 'd'},
        {"log", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *data = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "c:d:l:h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            config = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'l':
            if (!strcmp(optarg, "debug"))
                nlog_set_level(NLOG_DEBUG);
            else if (!strcmp(optarg, "info"))
                nlog_set_level(NLOG_INFO);
            else if (!strcmp(optarg, "warn"))
                nlog_set_level(NLOG_WARN);
            else if (!strcmp(optarg, "error"))
                nlog_set_level(NLOG_ERROR);
            else {
                fprintf(stderr, "ninesarb: --log '%s' must be debug, info, warn or error\n",
                        optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config || optind != argc) {
        usage(stderr);
        return 2;
    }
    static struct nines_conf conf;
    if (nines_conf_load(config, &conf)) {
        fprintf(stderr, "ninesarb: %s\n", nines_errdetail());
        return 2;
    }
    if (!data)
        data = conf.arbitrator_data[0] ? conf.arbitrator_data : ".";
    struct arb_srv *s;
    if (arb_srv_open(&s, &conf, data)) {
        NLOG_ERROR("arb", "cannot start: %s", nines_errdetail());
        fprintf(stderr, "ninesarb: %s\n", nines_errdetail());
        return 2;
    }
    the_srv = s;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = 0;
    while (!stopping && rc == 0)
        rc = arb_srv_poll(s, 1000);
    if (rc)
        NLOG_ERROR("arb", "stopped: %s", nines_errdetail());
    else
        NLOG_INFO("arb", "stopped by a signal");
    the_srv = NULL;
    arb_srv_close(s);
    return rc ? 1 : 0;
}
