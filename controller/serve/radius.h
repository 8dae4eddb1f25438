/* The blast radius of a scheduled experiment (faultline serve): every
 * address one of its runs faults or measures. Two experiments whose radii
 * share an address never run at once (scheduler.c): a run must not report
 * another run's damage as its own.
 *
 * A radius is the union of
 *  - faulted:  every candidate host of every fault (inventory addresses);
 *  - probed:   the host each probe reaches: an http url's host, a tcp host,
 *              an ssh probe's inventory host, every host= and hostaddr= of a
 *              postgres dsn, a redis address and its sentinels; a probe host
 *              that is an inventory host's name counts as that host's
 *              address too. Exec probes reach nothing faultline can see, and
 *              neither do a template's {host}/{address} fields (those are
 *              the fault's candidates, already faulted);
 *  - used:     schedule: { also_uses: [web1, tag:web] }, the inventory hosts
 *              a run depends on that nothing above names (the backends
 *              behind a load balancer, the master a sentinel names).
 *
 * Addresses are compared as text, normalised: no IPv6 brackets, IP
 * literals in one spelling (fd00:0::2 = fd00::2, ::ffff:10.0.0.1 =
 * 10.0.0.1), host names without case and trailing dot. No name is
 * resolved: a probe of lb.example.com and an inventory host 10.77.0.1 are
 * two addresses (name it in also_uses). Nothing here blocks or keeps state. */
#ifndef FL_SERVE_RADIUS_H
#define FL_SERVE_RADIUS_H

#include <stdbool.h>
#include <stddef.h>

struct fl_experiment;

enum fl_radius_why { FL_RADIUS_FAULTED, FL_RADIUS_PROBED, FL_RADIUS_USED };

struct fl_radius_addr {
    char *key;        /* normalised: what is compared */
    char *shown;      /* as written, without brackets: what is printed */
    const char *host; /* the inventory's name for it, or NULL (the experiment's string) */
    enum fl_radius_why why;
    const char *by; /* the fault or probe; NULL for also_uses (the experiment's string) */
};

/* Distinct (key, why, by), faulted first, then probed, then used. Points
 * into the experiment it was computed from: free it first. */
struct fl_radius {
    struct fl_radius_addr *addrs;
    size_t n;
    bool has_exec;     /* an exec probe: what it reaches is not known */
    bool has_sentinel; /* a redis probe through sentinels: its master is not known */
};

/* The radius of e. 0, -EINVAL (err: "probe 'x': ..." for a url or dsn whose
 * host cannot be read) or -ENOMEM; *out is written only on success. */
int fl_radius_of(const struct fl_experiment *e, struct fl_radius *out, char *err, size_t errlen);

/* Frees what r holds and zeroes it; a zeroed r is a no-op. */
void fl_radius_free(struct fl_radius *r);

/* Whether a and b share an address: the first such entry of a (faulted
 * first) and the entry of b with that address, in *ia and *ib. */
bool fl_radius_shared(const struct fl_radius *a, const struct fl_radius *b, size_t *ia, size_t *ib);

/* Why two experiments are kept apart, for skip rows and refusals:
 * "lb (10.77.0.1: probed by A, faulted by B)", or "10.77.0.1 (probed by A,
 * probed by B)" when neither inventory names it. */
void fl_radius_busy_text(const struct fl_radius *a, size_t ia, const char *a_name,
                         const struct fl_radius *b, size_t ib, const char *b_name, char *buf,
                         size_t len);

/* "faulted by", "probed by", "used by". */
const char *fl_radius_why_text(enum fl_radius_why why);

/* The normalised form of the host text h (len bytes), malloc'd, or NULL
 * when out of memory. */
char *fl_radius_key(const char *h, size_t len);

#endif
