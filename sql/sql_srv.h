/* sql_srv — a node's PostgreSQL protocol listener (sql/README.md). The
 * supervisor starts it after the node's runtime is set up and stops it on
 * shutdown; everything else of sql/ is internal.
 *
 * Threads: one listener thread (poll on the listening socket and an
 * eventfd), one thread per connection running its session. */
#ifndef NINES_SQL_SRV_H
#define NINES_SQL_SRV_H
#include <stdint.h>

struct nines_conf;
struct sql_srv;

/* Start the listener of node self on its `sql HOST:PORT` (conf is copied;
 * conf_path is given to the engine). A node without an sql address gets
 * 0 and *out NULL (no listener). Errors: NINES_ECONFIG (a verifier that
 * does not decode, self not in conf), NINES_ESYS (the address cannot be
 * bound), NINES_EIO (the engine did not start), with nines_errdetail(). */
int sql_srv_start(const struct nines_conf *conf, uint32_t self, const char *conf_path,
                  struct sql_srv **out);
/* The port it listens on. */
uint16_t sql_srv_port(const struct sql_srv *srv);
/* Close the listener, shut every session's socket, cancel what sessions
 * run, join every thread, free. NULL is a no-op. */
void sql_srv_stop(struct sql_srv *srv);
#endif
