/* Fault parameters, from NAME=VALUE text to a Faultline__FaultSpec.
 *
 * Two tables are the whole of it. `kinds` names each fault kind, the
 * parameters it takes (in help order), how to make its message with defaults
 * and how to check a finished one. `params` maps every parameter name to one
 * setter and a phrase saying what a value looks like; a name shared by kinds
 * (`name`, `duration`) has one setter for all of them. A unit test checks
 * that every name a kind lists has a setter.
 *
 * fl_faultspec_set validates a value completely before it touches the spec,
 * so a failed call leaves the spec as it was. Rules that involve more than
 * one parameter (a selector is set; `every` goes with mode repeat; ports need
 * tcp or udp; ...) cannot be judged while parameters arrive in any order:
 * fl_faultspec_check does those, and re-checks every value, so that it also
 * serves for a spec that was unpacked rather than built here.
 *
 * Everything in a spec is malloc'd -- strings included, never a literal or
 * protobuf_c_empty_string -- so protobuf_c_message_free_unpacked frees it.
 *
 * Numbers are plain decimal digits: no sign, no spaces, no hex. Names of
 * kinds and parameters are exact; words (once, tcp, reject, signal names) are
 * taken in any case. Near misses get a suggestion: the closest known name by
 * edit distance (a swap of two letters counts as one edit), or the only known
 * name the input begins. */
#include "controller/experiment/faultspec.h"

#include "common/suggest.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cidr.h"
#include "common/faultkind.h"
#include "common/text.h"
#include "common/units.h"

#define MIN_EVERY_MS 10 /* a faster restart storm is a fork bomb's cousin */
#define MAX_WORKERS 1024
#define MAX_SIGNAL 31 /* kill_process sends the standard signals only */
#define SHOW_MAX 48   /* bytes of a bad value quoted back in an error */

/* ---------------------------------------------------------------- errors */

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* NULL, empty, too long or holding a control character: common/text.h's one
 * rule, with a sentence in err that does not echo the text (it might hold
 * terminal escapes). */
static int check_text(const char *what, const char *text, char *err, size_t errlen)
{
    return fl_text_check(text, what, err, errlen);
}

/* How many bytes of s an error quotes, and whether it was cut. */
static int show_len(const char *s)
{
    size_t n = strlen(s);
    return n > SHOW_MAX ? SHOW_MAX : (int)n;
}

static const char *show_more(const char *s)
{
    return strlen(s) > SHOW_MAX ? "..." : "";
}

/* "a, b, c" into buf, cut short (with "...") when it does not fit. */
static void join(const char *const *names, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; names[i] != NULL; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", names[i]);
        if (n < 0 || (size_t)n >= len - used) {
            if (len >= 4)
                memcpy(buf + len - 4, "...", 4);
            return;
        }
        used += (size_t)n;
    }
}

/* ---------------------------------------------------------------- numbers */

/* The decimal digits at s, up to the first non-digit; *v is ULONG_MAX when
 * they overflow (more than any range here allows). -EINVAL when s does not
 * start with a digit: strtoul alone would take spaces, a sign and "0x". */
static int parse_digits(const char *s, unsigned long *v, const char **end)
{
    if (*s < '0' || *s > '9')
        return -EINVAL;
    char *e;
    errno = 0;
    unsigned long x = strtoul(s, &e, 10);
    if (errno == ERANGE)
        x = ULONG_MAX;
    *v = x;
    *end = e;
    return 0;
}

/* The whole of s as a number from min to max: -EINVAL for anything but
 * digits, -ERANGE outside the range. */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    unsigned long v;
    const char *end;
    if (parse_digits(s, &v, &end) < 0 || *end != '\0')
        return -EINVAL;
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

/* "30" or "30%", 1 to 100. */
static int parse_percent(const char *s, uint32_t *out)
{
    unsigned long v;
    const char *end;
    if (parse_digits(s, &v, &end) < 0 || !(end[0] == '\0' || (end[0] == '%' && end[1] == '\0')))
        return -EINVAL;
    if (v < 1 || v > 100)
        return -ERANGE;
    *out = (uint32_t)v;
    return 0;
}

/* ---------------------------------------------------------------- signals */

static const struct {
    const char *name;
    int signo;
} signals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"BUS", SIGBUS},       {"FPE", SIGFPE},
    {"KILL", SIGKILL},     {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},     {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},     {"CHLD", SIGCHLD},
    {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ},
    {"PROF", SIGPROF},     {"SYS", SIGSYS},   {"VTALRM", SIGVTALRM},
#ifdef SIGIOT
    {"IOT", SIGIOT},
#endif
#ifdef SIGSTKFLT
    {"STKFLT", SIGSTKFLT},
#endif
#ifdef SIGWINCH
    {"WINCH", SIGWINCH},
#endif
#ifdef SIGIO
    {"IO", SIGIO},
#endif
#ifdef SIGPOLL
    {"POLL", SIGPOLL},
#endif
#ifdef SIGPWR
    {"PWR", SIGPWR},
#endif
};

int fl_parse_signal(const char *text, int *signo)
{
    if (text == NULL || text[0] == '\0')
        return -EINVAL;
    if (text[0] >= '0' && text[0] <= '9') {
        unsigned long v;
        if (parse_uint(text, 1, MAX_SIGNAL, &v) < 0)
            return -EINVAL;
        *signo = (int)v;
        return 0;
    }
    const char *name = text;
    if (strncasecmp(name, "SIG", 3) == 0)
        name += 3;
    for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        if (strcasecmp(name, signals[i].name) == 0 && signals[i].signo <= MAX_SIGNAL) {
            *signo = signals[i].signo;
            return 0;
        }
    }
    return -EINVAL;
}

/* ---------------------------------------------------------------- peers */

/* An IPv4 or IPv6 address or network, by common/cidr.h's one rule (no host
 * bits past the prefix). 0, or -EINVAL with why saying what is wrong. */
static int peer_check(const char *s, char *why, size_t whylen)
{
    struct fl_cidr c;
    return fl_cidr_parse_err(s, &c, why, whylen);
}

/* ---------------------------------------------------------------- ports */

/* "N" or "N-M", 1 to 65535, N <= M. NULL when fine, else what is wrong. */
static const char *port_problem(const char *s, uint32_t *first, uint32_t *last)
{
    unsigned long a, b;
    const char *end;
    if (parse_digits(s, &a, &end) < 0)
        return "is not a port number or range";
    if (*end == '\0') {
        b = a;
    } else if (*end != '-' || parse_digits(end + 1, &b, &end) < 0 || *end != '\0') {
        return "is not a port number or range";
    }
    if (a > 65535 || b > 65535)
        return "is over 65535";
    if (a == 0 || b == 0)
        return "holds port 0: ports are 1 to 65535";
    if (b < a)
        return "is a range that ends before it starts";
    *first = (uint32_t)a;
    *last = (uint32_t)b;
    return NULL;
}

/* ---------------------------------------------------------------- the tables */

struct param {
    const char *name;
    const char *expects; /* what a good value looks like */
    int (*set)(Faultline__FaultSpec *spec, const struct param *p, const char *value, char *err,
               size_t errlen);
};

/* A kind's parameters, keyed by its case in common/faultkind.h (which owns
 * the names). */
struct kind {
    Faultline__FaultSpec__KindCase kind_case;
    const char *const *params;
    int (*init)(Faultline__FaultSpec *spec);
    int (*check)(const Faultline__FaultSpec *spec, const char *kind, char *err, size_t errlen);
};

/* "signal=TERMINATE: not a signal; expected ..." */
static int bad_value(char *err, size_t errlen, const struct param *p, const char *value,
                     const char *why)
{
    fail(err, errlen, "%s=%.*s%s: %s; expected %s", p->name, show_len(value), value,
         show_more(value), why, p->expects);
    return -EINVAL;
}

static int out_of_memory(char *err, size_t errlen)
{
    fail(err, errlen, "out of memory");
    return -ENOMEM;
}

/* ---------------------------------------------------------------- process setters */

static Faultline__ProcessSelector **selector_slot(Faultline__FaultSpec *spec)
{
    if (spec->kind_case == FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS)
        return &spec->kill_process->target;
    if (spec->kind_case == FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS)
        return &spec->pause_process->target;
    return NULL;
}

static const char *selector_name(Faultline__ProcessSelector__ByCase by)
{
    switch (by) {
    case FAULTLINE__PROCESS_SELECTOR__BY_PID:
        return "pid";
    case FAULTLINE__PROCESS_SELECTOR__BY_PIDFILE:
        return "pidfile";
    case FAULTLINE__PROCESS_SELECTOR__BY_NAME:
        return "name";
    case FAULTLINE__PROCESS_SELECTOR__BY_PATTERN:
        return "pattern";
    default:
        return "an unknown selector";
    }
}

static int set_selector(Faultline__FaultSpec *spec, const struct param *p, const char *value,
                        char *err, size_t errlen)
{
    Faultline__ProcessSelector__ByCase by;
    if (strcmp(p->name, "pid") == 0)
        by = FAULTLINE__PROCESS_SELECTOR__BY_PID;
    else if (strcmp(p->name, "pidfile") == 0)
        by = FAULTLINE__PROCESS_SELECTOR__BY_PIDFILE;
    else if (strcmp(p->name, "name") == 0)
        by = FAULTLINE__PROCESS_SELECTOR__BY_NAME;
    else
        by = FAULTLINE__PROCESS_SELECTOR__BY_PATTERN;

    Faultline__ProcessSelector **slot = selector_slot(spec);
    if (slot == NULL)
        return bad_value(err, errlen, p, value, "not a parameter of this kind");
    Faultline__ProcessSelector *sel = *slot;
    if (sel != NULL && sel->by_case != FAULTLINE__PROCESS_SELECTOR__BY__NOT_SET &&
        sel->by_case != by) {
        fail(err, errlen,
             "%s and %s are both set: a fault has one selector (pid, pidfile, name or "
             "pattern); keep one",
             selector_name(sel->by_case), p->name);
        return -EINVAL;
    }

    unsigned long pid = 0;
    if (by == FAULTLINE__PROCESS_SELECTOR__BY_PID) {
        int rc = parse_uint(value, 1, INT32_MAX, &pid);
        if (rc < 0)
            return bad_value(err, errlen, p, value,
                             rc == -ERANGE ? "out of range" : "not a whole number");
    } else if (by == FAULTLINE__PROCESS_SELECTOR__BY_PIDFILE && value[0] != '/') {
        return bad_value(err, errlen, p, value, "not an absolute path");
    }

    char *copy = NULL;
    if (by != FAULTLINE__PROCESS_SELECTOR__BY_PID && (copy = strdup(value)) == NULL)
        return out_of_memory(err, errlen);
    if (sel == NULL) {
        sel = malloc(sizeof(*sel));
        if (sel == NULL) {
            free(copy);
            return out_of_memory(err, errlen);
        }
        faultline__process_selector__init(sel);
        *slot = sel;
    }
    switch (by) {
    case FAULTLINE__PROCESS_SELECTOR__BY_PID:
        sel->pid = (int32_t)pid;
        break;
    case FAULTLINE__PROCESS_SELECTOR__BY_PIDFILE:
        if (sel->by_case == by)
            free(sel->pidfile);
        sel->pidfile = copy;
        break;
    case FAULTLINE__PROCESS_SELECTOR__BY_NAME:
        if (sel->by_case == by)
            free(sel->name);
        sel->name = copy;
        break;
    default:
        if (sel->by_case == by)
            free(sel->pattern);
        sel->pattern = copy;
        break;
    }
    sel->by_case = by;
    return 0;
}

/* Not the stop signals (STOP, TSTP, TTIN, TTOU) nor CONT: each stops or
 * resumes a process, and kill_process has nothing to undo, so a stop would
 * outlast the fault. pause_process is the pause that ends. */
static bool is_kill_signal(int sig)
{
    return sig >= 1 && sig <= MAX_SIGNAL && sig != SIGSTOP && sig != SIGTSTP && sig != SIGTTIN &&
           sig != SIGTTOU && sig != SIGCONT;
}

static int set_signal(Faultline__FaultSpec *spec, const struct param *p, const char *value,
                      char *err, size_t errlen)
{
    int sig;
    if (fl_parse_signal(value, &sig) < 0)
        return bad_value(err, errlen, p, value, "not a signal");
    if (!is_kill_signal(sig)) {
        fail(err, errlen,
             "signal=%.*s%s: kill_process does not send STOP, TSTP, TTIN, TTOU or CONT (a "
             "stopped process would stay stopped after the fault); pause_process pauses "
             "processes and resumes them when the fault ends",
             show_len(value), value, show_more(value));
        return -EINVAL;
    }
    spec->kill_process->signal = sig;
    return 0;
}

/* An enum written as a word, any case. */
struct word {
    const char *name;
    int value;
};

/* The value of value in words (NULL-terminated), or -EINVAL with err saying
 * what it is not. */
static int word_value(const struct word *words, const struct param *p, const char *value,
                      const char *what, int *out, char *err, size_t errlen)
{
    for (const struct word *w = words; w->name; w++) {
        if (strcasecmp(value, w->name) == 0) {
            *out = w->value;
            return 0;
        }
    }
    return bad_value(err, errlen, p, value, what);
}

static int set_mode(Faultline__FaultSpec *spec, const struct param *p, const char *value, char *err,
                    size_t errlen)
{
    static const struct word modes[] = {
        {"once", FAULTLINE__KILL_MODE__KILL_MODE_ONCE},
        {"repeat", FAULTLINE__KILL_MODE__KILL_MODE_REPEAT},
        {NULL, 0},
    };
    int v;
    int rc = word_value(modes, p, value, "not a mode", &v, err, errlen);
    if (rc == 0)
        spec->kill_process->mode = (Faultline__KillMode)v;
    return rc;
}

/* A duration from min_ms to max_ms. */
static int parse_duration_param(const struct param *p, const char *value, uint64_t min_ms,
                                uint64_t max_ms, uint64_t *out, char *err, size_t errlen)
{
    uint64_t ms;
    int rc = fl_parse_duration(value, &ms);
    if (rc == -ERANGE || (rc == 0 && ms > max_ms))
        return bad_value(err, errlen, p, value, "too long");
    if (rc < 0)
        return bad_value(err, errlen, p, value,
                         "not a duration (every number needs a unit: ms, s, m or h)");
    if (ms < min_ms)
        return bad_value(err, errlen, p, value, ms == 0 ? "zero" : "too short");
    *out = ms;
    return 0;
}

static int set_every(Faultline__FaultSpec *spec, const struct param *p, const char *value,
                     char *err, size_t errlen)
{
    uint64_t ms;
    int rc = parse_duration_param(p, value, MIN_EVERY_MS, UINT32_MAX, &ms, err, errlen);
    if (rc < 0)
        return rc;
    spec->kill_process->every_ms = (uint32_t)ms;
    return 0;
}

/* ---------------------------------------------------------------- network setters */

static int set_direction(Faultline__FaultSpec *spec, const struct param *p, const char *value,
                         char *err, size_t errlen)
{
    static const struct word directions[] = {
        {"ingress", FAULTLINE__DIRECTION__DIRECTION_INGRESS},
        {"egress", FAULTLINE__DIRECTION__DIRECTION_EGRESS},
        {"both", FAULTLINE__DIRECTION__DIRECTION_BOTH},
        {NULL, 0},
    };
    int v;
    int rc = word_value(directions, p, value, "not a direction", &v, err, errlen);
    if (rc == 0)
        spec->network_drop->direction = (Faultline__Direction)v;
    return rc;
}

static int set_protocol(Faultline__FaultSpec *spec, const struct param *p, const char *value,
                        char *err, size_t errlen)
{
    static const struct word protocols[] = {
        {"tcp", FAULTLINE__PROTOCOL__PROTOCOL_TCP},
        {"udp", FAULTLINE__PROTOCOL__PROTOCOL_UDP},
        {"icmp", FAULTLINE__PROTOCOL__PROTOCOL_ICMP},
        {"all", FAULTLINE__PROTOCOL__PROTOCOL_ALL},
        {NULL, 0},
    };
    int v;
    int rc = word_value(protocols, p, value, "not a protocol", &v, err, errlen);
    if (rc == 0)
        spec->network_drop->protocol = (Faultline__Protocol)v;
    return rc;
}

static int set_action(Faultline__FaultSpec *spec, const struct param *p, const char *value,
                      char *err, size_t errlen)
{
    static const struct word actions[] = {
        {"drop", FAULTLINE__DROP_ACTION__DROP_ACTION_DROP},
        {"reject", FAULTLINE__DROP_ACTION__DROP_ACTION_REJECT},
        {NULL, 0},
    };
    int v;
    int rc = word_value(actions, p, value, "not an action", &v, err, errlen);
    if (rc == 0)
        spec->network_drop->action = (Faultline__DropAction)v;
    return rc;
}

static int set_percent(Faultline__FaultSpec *spec, const struct param *p, const char *value,
                       char *err, size_t errlen)
{
    uint32_t pct;
    int rc = parse_percent(value, &pct);
    if (rc < 0)
        return bad_value(err, errlen, p, value,
                         rc == -ERANGE ? "out of range" : "not a whole percentage");
    spec->network_drop->percent = pct;
    return 0;
}

/* A comma-separated list, one entry at a time, spaces around entries
 * trimmed. Returns the entry's length and moves *cursor past its comma; the
 * caller stops when *cursor is NULL. */
static size_t next_entry(const char **cursor, const char **start)
{
    const char *s = *cursor;
    const char *comma = strchr(s, ',');
    const char *end = comma ? comma : s + strlen(s);
    *cursor = comma ? comma + 1 : NULL;
    while (s < end && *s == ' ')
        s++;
    while (end > s && end[-1] == ' ')
        end--;
    *start = s;
    return (size_t)(end - s);
}

static size_t count_entries(const char *value)
{
    size_t n = 1;
    for (const char *c = value; (c = strchr(c, ',')) != NULL; c++)
        n++;
    return n;
}

/* Entry i of value into buf (FL_TEXT_MAX + 1 bytes); -EINVAL with err when an
 * entry is empty. */
static int take_entry(const struct param *p, const char *value, const char **cursor, size_t i,
                      char *buf, char *err, size_t errlen)
{
    const char *start;
    size_t len = next_entry(cursor, &start);
    if (len == 0) {
        char why[64];
        snprintf(why, sizeof(why), "entry %zu is empty", i + 1);
        return bad_value(err, errlen, p, value, why);
    }
    memcpy(buf, start, len);
    buf[len] = '\0';
    return 0;
}

/* "ports=80,0-9: '0-9' holds port 0: ports are 1 to 65535; expected ..." */
static int bad_entry(char *err, size_t errlen, const struct param *p, const char *value,
                     const char *entry, const char *why)
{
    char what[160];
    snprintf(what, sizeof(what), "'%.*s%s' %s", show_len(entry), entry, show_more(entry), why);
    return bad_value(err, errlen, p, value, what);
}

static int too_many(char *err, size_t errlen, const struct param *p, size_t have, size_t adding)
{
    fail(err, errlen, "%s: %zu entries (%zu already set and %zu more) are over the limit of %d",
         p->name, have + adding, have, adding, FL_FAULTSPEC_MAX_LIST);
    return -EINVAL;
}

static int set_peers(Faultline__FaultSpec *spec, const struct param *p, const char *value,
                     char *err, size_t errlen)
{
    Faultline__NetworkDrop *n = spec->network_drop;
    size_t count = count_entries(value);
    if (n->n_peers + count > FL_FAULTSPEC_MAX_LIST)
        return too_many(err, errlen, p, n->n_peers, count);
    char **add = calloc(count, sizeof(*add));
    if (add == NULL)
        return out_of_memory(err, errlen);
    char buf[FL_TEXT_MAX + 1];
    const char *cursor = value;
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        if ((rc = take_entry(p, value, &cursor, i, buf, err, errlen)) < 0)
            break;
        char why[160];
        if (peer_check(buf, why, sizeof(why)) < 0)
            rc = bad_value(err, errlen, p, value, why);
        else if ((add[i] = strdup(buf)) == NULL)
            rc = out_of_memory(err, errlen);
    }
    if (rc == 0) {
        char **grown = realloc(n->peers, (n->n_peers + count) * sizeof(*grown));
        if (grown == NULL) {
            rc = out_of_memory(err, errlen);
        } else {
            memcpy(grown + n->n_peers, add, count * sizeof(*add));
            n->peers = grown;
            n->n_peers += count;
            free(add);
            return 0;
        }
    }
    for (size_t i = 0; i < count; i++)
        free(add[i]);
    free(add);
    return rc;
}

static int set_ports(Faultline__FaultSpec *spec, const struct param *p, const char *value,
                     char *err, size_t errlen)
{
    Faultline__NetworkDrop *n = spec->network_drop;
    size_t count = count_entries(value);
    if (n->n_ports + count > FL_FAULTSPEC_MAX_LIST)
        return too_many(err, errlen, p, n->n_ports, count);
    Faultline__PortRange **add = calloc(count, sizeof(*add));
    if (add == NULL)
        return out_of_memory(err, errlen);
    char buf[FL_TEXT_MAX + 1];
    const char *cursor = value;
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        if ((rc = take_entry(p, value, &cursor, i, buf, err, errlen)) < 0)
            break;
        uint32_t first, last;
        const char *why = port_problem(buf, &first, &last);
        if (why != NULL) {
            rc = bad_entry(err, errlen, p, value, buf, why);
        } else if ((add[i] = malloc(sizeof(*add[i]))) == NULL) {
            rc = out_of_memory(err, errlen);
        } else {
            faultline__port_range__init(add[i]);
            add[i]->first = first;
            add[i]->last = last; /* explicit even for one port: 0 would also do */
        }
    }
    if (rc == 0) {
        Faultline__PortRange **grown = realloc(n->ports, (n->n_ports + count) * sizeof(*grown));
        if (grown == NULL) {
            rc = out_of_memory(err, errlen);
        } else {
            memcpy(grown + n->n_ports, add, count * sizeof(*add));
            n->ports = grown;
            n->n_ports += count;
            free(add);
            return 0;
        }
    }
    for (size_t i = 0; i < count; i++)
        free(add[i]);
    free(add);
    return rc;
}

/* ---------------------------------------------------------------- disk, cpu, memory setters */

static int set_path(Faultline__FaultSpec *spec, const struct param *p, const char *value, char *err,
                    size_t errlen)
{
    if (value[0] != '/')
        return bad_value(err, errlen, p, value, "not an absolute path");
    char *copy = strdup(value);
    if (copy == NULL)
        return out_of_memory(err, errlen);
    free(spec->disk_fill->path);
    spec->disk_fill->path = copy;
    return 0;
}

static int set_fill(Faultline__FaultSpec *spec, const struct param *p, const char *value, char *err,
                    size_t errlen)
{
    struct fl_size size;
    int rc = fl_parse_size(value, &size);
    if (rc == -ERANGE)
        return bad_value(err, errlen, p, value, "out of range");
    if (rc < 0)
        return bad_value(err, errlen, p, value, "not a percentage or a size");
    Faultline__DiskFill *d = spec->disk_fill;
    if (size.is_percent) {
        uint32_t whole = (uint32_t)size.percent;
        if ((double)whole != size.percent)
            return bad_value(err, errlen, p, value, "not a whole percentage");
        d->amount_case = FAULTLINE__DISK_FILL__AMOUNT_PERCENT;
        d->percent = whole;
        return 0;
    }
    if (strspn(value, "0123456789") == strlen(value)) {
        fail(err, errlen,
             "fill=%.*s%s: a bare number is ambiguous; write %.*s%s%% for a share of the file "
             "system, or a size with a unit such as %.*s%sMiB",
             show_len(value), value, show_more(value), show_len(value), value, show_more(value),
             show_len(value), value, show_more(value));
        return -EINVAL;
    }
    if (size.bytes == 0)
        return bad_value(err, errlen, p, value, "zero");
    d->amount_case = FAULTLINE__DISK_FILL__AMOUNT_BYTES;
    d->bytes = size.bytes;
    return 0;
}

static int set_workers(Faultline__FaultSpec *spec, const struct param *p, const char *value,
                       char *err, size_t errlen)
{
    unsigned long v;
    int rc = parse_uint(value, 1, MAX_WORKERS, &v);
    if (rc < 0)
        return bad_value(err, errlen, p, value,
                         rc == -ERANGE ? "out of range" : "not a whole number");
    spec->cpu_stress->workers = (uint32_t)v;
    return 0;
}

static int set_load(Faultline__FaultSpec *spec, const struct param *p, const char *value, char *err,
                    size_t errlen)
{
    uint32_t pct;
    int rc = parse_percent(value, &pct);
    if (rc < 0)
        return bad_value(err, errlen, p, value,
                         rc == -ERANGE ? "out of range" : "not a whole percentage");
    spec->cpu_stress->load_percent = pct;
    return 0;
}

static int set_size(Faultline__FaultSpec *spec, const struct param *p, const char *value, char *err,
                    size_t errlen)
{
    struct fl_size size;
    if (value[strlen(value) - 1] == '%')
        return bad_value(err, errlen, p, value, "memory_stress takes a size, not a percentage");
    int rc = fl_parse_size(value, &size);
    if (rc == -ERANGE)
        return bad_value(err, errlen, p, value, "too large");
    if (rc < 0)
        return bad_value(err, errlen, p, value, "not a size");
    if (size.bytes == 0)
        return bad_value(err, errlen, p, value, "zero");
    spec->memory_stress->bytes = size.bytes;
    return 0;
}

static int set_duration(Faultline__FaultSpec *spec, const struct param *p, const char *value,
                        char *err, size_t errlen)
{
    uint64_t ms;
    int rc = parse_duration_param(p, value, 1, UINT64_MAX, &ms, err, errlen);
    if (rc < 0)
        return rc;
    spec->duration_ms = ms;
    return 0;
}

/* ---------------------------------------------------------------- parameters */

static const struct param params[] = {
    {"pid", "a process id, a whole number such as 4242", set_selector},
    {"pidfile", "an absolute path to a file that holds a process id, such as /run/nginx.pid",
     set_selector},
    {"name", "the exact name of the process, such as nginx", set_selector},
    {"pattern", "text found in the process's command line, such as 'worker --queue=mail'",
     set_selector},
    {"signal", "a signal name such as KILL, TERM or INT, or a number from 1 to 31", set_signal},
    {"mode", "once or repeat", set_mode},
    {"every", "a duration of at least 10ms, such as 500ms or 2s", set_every},
    {"direction", "ingress, egress or both", set_direction},
    {"peers", "IP addresses or CIDRs, comma-separated, such as 10.0.0.5,10.1.0.0/16,fd00::/64",
     set_peers},
    {"protocol", "tcp, udp, icmp or all", set_protocol},
    {"ports", "ports or ranges from 1 to 65535, comma-separated, such as 80,443,8000-8100",
     set_ports},
    {"action", "drop or reject", set_action},
    {"percent", "a share of packets from 1 to 100, such as 30 or 30%", set_percent},
    {"path", "an absolute path on the file system to fill, such as /var/lib/app", set_path},
    {"fill", "a share of the file system such as 95%, or a size such as 2GiB", set_fill},
    {"workers", "a number of workers from 1 to 1024", set_workers},
    {"load", "a share of one core from 1 to 100, such as 80 or 80%", set_load},
    {"size", "a size such as 512MiB or 2GiB", set_size},
    {"duration", "a duration such as 30s, 5m or 1m30s", set_duration},
};

static const struct param *param_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
        if (strcmp(params[i].name, name) == 0)
            return &params[i];
    return NULL;
}

/* ---------------------------------------------------------------- checks */

static int check_selector(const Faultline__ProcessSelector *sel, const char *kind, char *err,
                          size_t errlen)
{
    if (sel == NULL || sel->by_case == FAULTLINE__PROCESS_SELECTOR__BY__NOT_SET) {
        fail(err, errlen, "%s needs a target: set one of pid, pidfile, name or pattern", kind);
        return -EINVAL;
    }
    switch (sel->by_case) {
    case FAULTLINE__PROCESS_SELECTOR__BY_PID:
        if (sel->pid <= 0) {
            fail(err, errlen, "pid %d is not a process id: expected 1 or more", (int)sel->pid);
            return -EINVAL;
        }
        return 0;
    case FAULTLINE__PROCESS_SELECTOR__BY_PIDFILE:
        if (check_text("pidfile", sel->pidfile, err, errlen) < 0)
            return -EINVAL;
        if (sel->pidfile[0] != '/') {
            fail(err, errlen, "pidfile must be an absolute path, such as /run/nginx.pid");
            return -EINVAL;
        }
        return 0;
    case FAULTLINE__PROCESS_SELECTOR__BY_NAME:
        return check_text("name", sel->name, err, errlen);
    case FAULTLINE__PROCESS_SELECTOR__BY_PATTERN:
        return check_text("pattern", sel->pattern, err, errlen);
    default:
        fail(err, errlen, "%s has an unknown selector (%d)", kind, (int)sel->by_case);
        return -EINVAL;
    }
}

static int check_kill(const Faultline__FaultSpec *spec, const char *kind, char *err, size_t errlen)
{
    const Faultline__KillProcess *k = spec->kill_process;
    int rc = check_selector(k->target, kind, err, errlen);
    if (rc < 0)
        return rc;
    if (k->signal != 0 && !is_kill_signal(k->signal)) {
        fail(err, errlen,
             "signal %d is not one kill_process sends: expected 1 to 31, not STOP, TSTP, "
             "TTIN, TTOU or CONT (pause_process pauses a process and resumes it)",
             (int)k->signal);
        return -EINVAL;
    }
    switch (k->mode) {
    case FAULTLINE__KILL_MODE__KILL_MODE_ONCE:
        if (k->every_ms != 0) {
            fail(err, errlen, "every is set but mode is once: add mode=repeat, or drop every");
            return -EINVAL;
        }
        return 0;
    case FAULTLINE__KILL_MODE__KILL_MODE_REPEAT:
        if (k->every_ms == 0) {
            fail(err, errlen, "mode repeat needs every: how often to kill again, such as every=1s");
            return -EINVAL;
        }
        if (k->every_ms < MIN_EVERY_MS) {
            fail(err, errlen, "every %ums is too short: expected at least %dms",
                 (unsigned)k->every_ms, MIN_EVERY_MS);
            return -EINVAL;
        }
        return 0;
    default:
        fail(err, errlen, "mode %d is not once or repeat", (int)k->mode);
        return -EINVAL;
    }
}

static int check_pause(const Faultline__FaultSpec *spec, const char *kind, char *err, size_t errlen)
{
    return check_selector(spec->pause_process->target, kind, err, errlen);
}

static int check_network(const Faultline__FaultSpec *spec, const char *kind, char *err,
                         size_t errlen)
{
    (void)kind;
    const Faultline__NetworkDrop *n = spec->network_drop;
    if ((unsigned)n->direction > FAULTLINE__DIRECTION__DIRECTION_EGRESS) {
        fail(err, errlen, "direction %d is not ingress, egress or both", (int)n->direction);
        return -EINVAL;
    }
    if ((unsigned)n->protocol > FAULTLINE__PROTOCOL__PROTOCOL_ICMP) {
        fail(err, errlen, "protocol %d is not tcp, udp, icmp or all", (int)n->protocol);
        return -EINVAL;
    }
    if ((unsigned)n->action > FAULTLINE__DROP_ACTION__DROP_ACTION_REJECT) {
        fail(err, errlen, "action %d is not drop or reject", (int)n->action);
        return -EINVAL;
    }
    if (n->percent > 100) {
        fail(err, errlen, "percent %u is over 100", (unsigned)n->percent);
        return -EINVAL;
    }
    if (n->n_peers > FL_FAULTSPEC_MAX_LIST || n->n_ports > FL_FAULTSPEC_MAX_LIST) {
        fail(err, errlen, "%zu peers and %zu ports: at most %d of each", n->n_peers, n->n_ports,
             FL_FAULTSPEC_MAX_LIST);
        return -EINVAL;
    }
    for (size_t i = 0; i < n->n_peers; i++) {
        if (check_text("a peer", n->peers[i], err, errlen) < 0)
            return -EINVAL;
        char why[160];
        if (peer_check(n->peers[i], why, sizeof(why)) < 0) {
            fail(err, errlen, "peers[%zu]: %s", i, why);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < n->n_ports; i++) {
        const Faultline__PortRange *r = n->ports[i];
        if (r == NULL || r->first < 1 || r->first > 65535 ||
            (r->last != 0 && (r->last < r->first || r->last > 65535))) {
            fail(err, errlen, "port range %zu (%u-%u) is not within 1 to 65535", i + 1,
                 r ? (unsigned)r->first : 0u, r ? (unsigned)r->last : 0u);
            return -EINVAL;
        }
    }
    if (n->n_ports > 0 && n->protocol != FAULTLINE__PROTOCOL__PROTOCOL_TCP &&
        n->protocol != FAULTLINE__PROTOCOL__PROTOCOL_UDP) {
        fail(err, errlen, "ports need protocol=tcp or protocol=udp (protocol is %s)",
             n->protocol == FAULTLINE__PROTOCOL__PROTOCOL_ICMP ? "icmp" : "all");
        return -EINVAL;
    }
    return 0;
}

static int check_disk(const Faultline__FaultSpec *spec, const char *kind, char *err, size_t errlen)
{
    const Faultline__DiskFill *d = spec->disk_fill;
    if (d->path == NULL || d->path[0] == '\0') {
        fail(err, errlen,
             "%s needs path: a directory on the file system to fill, such as "
             "path=/var/lib/app",
             kind);
        return -EINVAL;
    }
    if (check_text("path", d->path, err, errlen) < 0)
        return -EINVAL;
    if (d->path[0] != '/') {
        fail(err, errlen, "path must be absolute, such as /var/lib/app");
        return -EINVAL;
    }
    switch (d->amount_case) {
    case FAULTLINE__DISK_FILL__AMOUNT_PERCENT:
        if (d->percent < 1 || d->percent > 100) {
            fail(err, errlen, "fill %u%% is not from 1%% to 100%%", (unsigned)d->percent);
            return -EINVAL;
        }
        return 0;
    case FAULTLINE__DISK_FILL__AMOUNT_BYTES:
        if (d->bytes == 0) {
            fail(err, errlen, "fill of 0 bytes takes nothing: expected a size such as 2GiB");
            return -EINVAL;
        }
        return 0;
    default:
        fail(err, errlen,
             "%s needs fill: a share of the file system such as fill=95%%, or a "
             "size such as fill=2GiB",
             kind);
        return -EINVAL;
    }
}

static int check_cpu(const Faultline__FaultSpec *spec, const char *kind, char *err, size_t errlen)
{
    (void)kind;
    const Faultline__CpuStress *c = spec->cpu_stress;
    if (c->workers > MAX_WORKERS) {
        fail(err, errlen, "workers %u is over %d", (unsigned)c->workers, MAX_WORKERS);
        return -EINVAL;
    }
    if (c->load_percent > 100) {
        fail(err, errlen, "load %u%% is over 100%%", (unsigned)c->load_percent);
        return -EINVAL;
    }
    return 0;
}

static int check_memory(const Faultline__FaultSpec *spec, const char *kind, char *err,
                        size_t errlen)
{
    if (spec->memory_stress->bytes == 0) {
        fail(err, errlen, "%s needs size: how much memory to take, such as size=512MiB", kind);
        return -EINVAL;
    }
    return 0;
}

/* ---------------------------------------------------------------- kinds */

static const char *const kill_params[] = {"pid",  "pidfile", "name",     "pattern", "signal",
                                          "mode", "every",   "duration", NULL};
static const char *const pause_params[] = {"pid", "pidfile", "name", "pattern", "duration", NULL};
static const char *const network_params[] = {"direction", "peers",   "protocol", "ports",
                                             "action",    "percent", "duration", NULL};
static const char *const disk_params[] = {"path", "fill", "duration", NULL};
static const char *const cpu_params[] = {"workers", "load", "duration", NULL};
static const char *const memory_params[] = {"size", "duration", NULL};

/* Each init sets spec's kind and its message, with defaults; -ENOMEM leaves
 * spec as it was. */
static int init_kill(Faultline__FaultSpec *spec)
{
    Faultline__KillProcess *k = malloc(sizeof(*k));
    if (k == NULL)
        return -ENOMEM;
    faultline__kill_process__init(k);
    k->signal = SIGKILL; /* 0 means the same on the wire; explicit reads better in reports */
    spec->kill_process = k;
    spec->kind_case = FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS;
    return 0;
}

static int init_pause(Faultline__FaultSpec *spec)
{
    Faultline__PauseProcess *m = malloc(sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    faultline__pause_process__init(m);
    spec->pause_process = m;
    spec->kind_case = FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS;
    return 0;
}

static int init_network(Faultline__FaultSpec *spec)
{
    Faultline__NetworkDrop *n = malloc(sizeof(*n));
    if (n == NULL)
        return -ENOMEM;
    faultline__network_drop__init(n);
    n->percent = 100;
    spec->network_drop = n;
    spec->kind_case = FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP;
    return 0;
}

static int init_disk(Faultline__FaultSpec *spec)
{
    Faultline__DiskFill *d = malloc(sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    faultline__disk_fill__init(d);
    d->path = strdup(""); /* never protobuf_c_empty_string: see the top */
    if (d->path == NULL) {
        free(d);
        return -ENOMEM;
    }
    spec->disk_fill = d;
    spec->kind_case = FAULTLINE__FAULT_SPEC__KIND_DISK_FILL;
    return 0;
}

static int init_cpu(Faultline__FaultSpec *spec)
{
    Faultline__CpuStress *c = malloc(sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    faultline__cpu_stress__init(c);
    c->load_percent = 100;
    spec->cpu_stress = c;
    spec->kind_case = FAULTLINE__FAULT_SPEC__KIND_CPU_STRESS;
    return 0;
}

static int init_memory(Faultline__FaultSpec *spec)
{
    Faultline__MemoryStress *m = malloc(sizeof(*m));
    if (m == NULL)
        return -ENOMEM;
    faultline__memory_stress__init(m);
    spec->memory_stress = m;
    spec->kind_case = FAULTLINE__FAULT_SPEC__KIND_MEMORY_STRESS;
    return 0;
}

static const struct kind kinds[] = {
    {FAULTLINE__FAULT_SPEC__KIND_KILL_PROCESS, kill_params, init_kill, check_kill},
    {FAULTLINE__FAULT_SPEC__KIND_PAUSE_PROCESS, pause_params, init_pause, check_pause},
    {FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP, network_params, init_network, check_network},
    {FAULTLINE__FAULT_SPEC__KIND_DISK_FILL, disk_params, init_disk, check_disk},
    {FAULTLINE__FAULT_SPEC__KIND_CPU_STRESS, cpu_params, init_cpu, check_cpu},
    {FAULTLINE__FAULT_SPEC__KIND_MEMORY_STRESS, memory_params, init_memory, check_memory},
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

static const struct kind *kind_by_case(Faultline__FaultSpec__KindCase kind_case)
{
    for (size_t i = 0; i < N_KINDS; i++)
        if (kinds[i].kind_case == kind_case)
            return &kinds[i];
    return NULL;
}

/* A kind's row, for a name common/faultkind.h knows; NULL for any other. */
static const struct kind *kind_by_name(const char *name)
{
    Faultline__FaultSpec__KindCase c = fl_kind_case(name);
    return c == FAULTLINE__FAULT_SPEC__KIND__NOT_SET ? NULL : kind_by_case(c);
}

static const struct kind *kind_of(const Faultline__FaultSpec *spec)
{
    return kind_by_case(spec->kind_case);
}

static const char *kind_name(const struct kind *k)
{
    return fl_kind_name(k->kind_case);
}

static bool takes(const struct kind *k, const char *name)
{
    for (size_t i = 0; k->params[i] != NULL; i++)
        if (strcmp(k->params[i], name) == 0)
            return true;
    return false;
}

/* ---------------------------------------------------------------- public */

const char *const *fl_faultspec_kinds(void)
{
    return fl_kind_names;
}

const char *const *fl_faultspec_params(const char *kind)
{
    const struct kind *k = kind == NULL ? NULL : kind_by_name(kind);
    return k == NULL ? NULL : k->params;
}

const char *fl_faultspec_kind(const Faultline__FaultSpec *spec)
{
    const struct kind *k = spec == NULL ? NULL : kind_of(spec);
    return k == NULL ? NULL : kind_name(k);
}

Faultline__FaultSpec *fl_faultspec_new(const char *kind, char *err, size_t errlen)
{
    if (check_text("the fault kind", kind, err, errlen) < 0)
        return NULL;
    const struct kind *k = kind_by_name(kind);
    bool listed = false; /* a product kind (test-only ones are unknown here) */
    for (size_t i = 0; fl_kind_names[i] != NULL; i++)
        listed = listed || strcmp(fl_kind_names[i], kind) == 0;
    if (k == NULL && listed) {
        /* common/faultkind.h has it, the table above does not: a bug here */
        fail(err, errlen, "fault kind %s has no parameters in this controller", kind);
        return NULL;
    }
    if (k == NULL) {
        char known[160];
        fl_kind_list(known, sizeof(known));
        const char *near = fl_suggest(kind, fl_kind_names, true);
        fail(err, errlen, "unknown fault kind '%.*s%s'%s%s%s (kinds: %s)", show_len(kind), kind,
             show_more(kind), near ? "; did you mean " : "", near ? near : "", near ? "?" : "",
             known);
        return NULL;
    }
    Faultline__FaultSpec *spec = malloc(sizeof(*spec));
    if (spec == NULL) {
        out_of_memory(err, errlen);
        return NULL;
    }
    faultline__fault_spec__init(spec);
    spec->name = strdup("");
    if (spec->name == NULL || k->init(spec) < 0) {
        fl_faultspec_free(spec);
        out_of_memory(err, errlen);
        return NULL;
    }
    return spec;
}

/* For a name the kind does not take: which kinds do, or the nearest name. */
static int unknown_param(const struct kind *k, const char *name, char *err, size_t errlen)
{
    char known[200];
    join(k->params, known, sizeof(known));
    char owners[120] = "";
    size_t used = 0, n_owners = 0;
    for (size_t i = 0; i < N_KINDS; i++) {
        if (&kinds[i] == k || !takes(&kinds[i], name))
            continue;
        int w = snprintf(owners + used, sizeof(owners) - used, "%s%s", n_owners ? " and " : "",
                         kind_name(&kinds[i]));
        if (w > 0 && (size_t)w < sizeof(owners) - used)
            used += (size_t)w;
        n_owners++;
    }
    if (n_owners > 0) {
        fail(err, errlen, "%s is a parameter of %s, not of %s; %s takes %s", name, owners,
             kind_name(k), kind_name(k), known);
        return -EINVAL;
    }
    const char *near = fl_suggest(name, k->params, true);
    fail(err, errlen, "%s has no parameter '%.*s%s'%s%s%s (%s takes %s)", kind_name(k),
         show_len(name), name, show_more(name), near ? "; did you mean " : "", near ? near : "",
         near ? "?" : "", kind_name(k), known);
    return -EINVAL;
}

int fl_faultspec_set(Faultline__FaultSpec *spec, const char *name, const char *value, char *err,
                     size_t errlen)
{
    const struct kind *k = spec == NULL ? NULL : kind_of(spec);
    if (k == NULL || fl_kind_message(spec) == NULL) {
        fail(err, errlen, "no fault kind is set: make the spec with fl_faultspec_new");
        return -EINVAL;
    }
    if (check_text("a parameter name", name, err, errlen) < 0)
        return -EINVAL;
    if (!takes(k, name))
        return unknown_param(k, name, err, errlen);
    const struct param *p = param_by_name(name);
    if (p == NULL) { /* a kind lists a name no setter has: a bug here */
        fail(err, errlen, "%s: parameter %s has no setter", kind_name(k), name);
        return -EINVAL;
    }
    if (value == NULL || value[0] == '\0') {
        fail(err, errlen, "%s is empty; expected %s", name, p->expects);
        return -EINVAL;
    }
    if (check_text(name, value, err, errlen) < 0)
        return -EINVAL;
    return p->set(spec, p, value, err, errlen);
}

int fl_faultspec_set_name(Faultline__FaultSpec *spec, const char *name)
{
    if (spec == NULL || name == NULL)
        return -EINVAL;
    char *copy = strdup(name);
    if (copy == NULL)
        return -ENOMEM;
    if (spec->name != protobuf_c_empty_string)
        free(spec->name);
    spec->name = copy;
    return 0;
}

int fl_faultspec_check(const Faultline__FaultSpec *spec, char *err, size_t errlen)
{
    if (spec == NULL) {
        fail(err, errlen, "no fault spec");
        return -EINVAL;
    }
    const struct kind *k = kind_of(spec);
    if (k == NULL) {
        char known[160];
        fl_kind_list(known, sizeof(known));
        fail(err, errlen, "the fault has no kind: expected one of %s", known);
        return -EINVAL;
    }
    if (fl_kind_message(spec) == NULL) {
        fail(err, errlen, "the %s fault has no parameters message", kind_name(k));
        return -EINVAL;
    }
    int rc = k->check(spec, kind_name(k), err, errlen);
    if (rc < 0)
        return rc;
    if (spec->duration_ms == 0) {
        fail(err, errlen, "%s needs a duration: how long the fault lasts, such as 30s",
             kind_name(k));
        return -EINVAL;
    }
    return 0;
}

void fl_faultspec_free(Faultline__FaultSpec *spec)
{
    if (spec != NULL)
        protobuf_c_message_free_unpacked(&spec->base, NULL);
}
