/* The availability budget (issue 14): the seed's arithmetic on a measured
 * recovery time. Pure functions, no I/O.
 *
 *   A      = MTBF / (MTBF + MTTR)          one instance
 *   A_N    = 1 - (1 - A)^N                 N independent instances (zones)
 *   down   = (1 - A_N) * year              downtime per year
 *
 * A year is 365 days (8760 h), the convention of availability tables
 * ("99.95 % = 4 h 22 min 48 s a year").
 *
 * The failure rate comes in one of two forms:
 *   failures_per_year f   the failure cycle (time up + time to repair) is
 *                         year / f, so A = 1 - f * MTTR / year and the largest
 *                         recovery the target allows is (1 - A) * year / f:
 *                         99.95 % with 6 failures a year allows 43 min 48 s each;
 *   mtbf                  time up between failures, A = MTBF / (MTBF + MTTR), the
 *                         largest recovery is MTBF * (1 - A) / A.
 * With N instances the target applies to A_N: each instance must reach
 * 1 - (1 - target)^(1/N), and the largest recovery follows from that. */
#ifndef FL_CONTROLLER_REPORT_AVAILABILITY_H
#define FL_CONTROLLER_REPORT_AVAILABILITY_H

#include <stdbool.h>
#include <stdint.h>

#define FL_AVAIL_YEAR_MS (365.0 * 24 * 3600 * 1000)
/* Redundancy is 1 to FL_AVAIL_REDUNDANCY_MAX instances; more is refused. */
#define FL_AVAIL_REDUNDANCY_MAX 100

struct fl_avail_budget {
    double target;            /* a fraction, 0 < target < 1 (99.95 % = 0.9995) */
    double failures_per_year; /* > 0, or 0 when mtbf_ms is given */
    double mtbf_ms;           /* > 0, or 0 when failures_per_year is given */
    unsigned redundancy;      /* instances, 1..FL_AVAIL_REDUNDANCY_MAX (0 means 1) */
};

struct fl_avail_result {
    double availability;         /* A_N implied by the measured MTTR, 0..1 */
    double downtime_ms_per_year; /* (1 - A_N) * year */
    int64_t max_mttr_ms;         /* the largest recovery the target allows */
    bool pass;                   /* mttr_ms <= max_mttr_ms */
};

/* 1 - (1 - a)^n: n independent instances of availability a (n >= 1). */
double fl_avail_redundant(double a, unsigned n);

/* The availability one instance needs so that n reach target. */
double fl_avail_per_instance(double target, unsigned n);

/* Evaluates a measured MTTR (ms, >= 0) against a budget. Returns 0, or
 * -EINVAL with err naming the problem: target not in (0, 1), neither or both
 * of failures_per_year and mtbf_ms, a negative or non-finite number,
 * redundancy above FL_AVAIL_REDUNDANCY_MAX. max_mttr_ms is rounded down to
 * a whole ms after a relative 1e-9 allowance for decimal fractions such as
 * 0.9995 that binary floating point cannot hold exactly (so the 43 min
 * 48 s comes out as 2628000 ms, not 2627999). */
int fl_avail_evaluate(const struct fl_avail_budget *b, double mttr_ms, struct fl_avail_result *out,
                      char *err, unsigned errlen);

#endif
