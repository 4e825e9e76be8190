/* sql_srv — a node's PostgreSQL protocol listener (sql/README.md). The
 * supervisor starts it after the node's runtime is set up and stops it on
 * shutdown; everything else of sql/ is internal.
 *
 * Threads: one listener thread (poll on the listening socket and an
 * eventfd), one thread per connection running its session. */
#ifndef NINES_SQL_SRV_H
#define NINES_SQL_SRV_H
#include <stddef.h>
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
/* The same; the engine's sessions reach the cluster logged in as user with
 * password (the node's internal login when client_auth is scram-sha-256:
 * sql/README.md "Roles"); NULL user: no login. */
int sql_srv_start_as(const struct nines_conf *conf, uint32_t self, const char *conf_path,
                     const char *user, const char *password, struct sql_srv **out);

/* SQL users beside the cluster file's sql_user lines: the dictionary's
 * (README.md "SECURITY"), given again by the node after every change. Any
 * thread; copied. A session keeps the role it logged in with. */
struct sql_srv_user {
    char name[64];
    uint32_t role;            /* enum nines_role */
    char verifier[256];       /* SCRAM-SHA-256$... */
};
int sql_srv_set_users(struct sql_srv *srv, const struct sql_srv_user *u, size_t n);
/* The port it listens on. */
uint16_t sql_srv_port(const struct sql_srv *srv);
/* Close the listener, shut every session's socket, cancel what sessions
 * run, join every thread, free. NULL is a no-op. */
void sql_srv_stop(struct sql_srv *srv);
#endif
