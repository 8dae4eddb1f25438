/* run.json: the run record as a documented, stable JSON document
 * (docs/design.md section 8). Other tools read it, so its layout is part of the
 * interface:
 *
 *   format          2 (FL_REPORT_JSON_FORMAT); raised only when a field
 *                   changes meaning or goes away (2: probes[].timeline[]
 *                   became counts/health/failures/late + attempts.jsonl)
 *   experiment      {name, description (null when not given), path}
 *   verdict         "pass" | "fail" | "aborted";  reason: one sentence
 *   abort_reason    the stop condition that fired, or null
 *   controller      the controller's own lateness: overloaded, attempts,
 *                   late, late_starts, skipped, max_start_late_ms,
 *                   longest_stall_ms, threshold_ms, overload_percent
 *   controller_overloaded  the same object when it was overloaded, else null
 *   attempts_file   "attempts.jsonl" (every attempt, one JSON line each:
 *                   {p, t, l, o, d}, controller/run/attemptlog.h) or null;
 *                   attempts_complete, attempts_error (null, or why the file
 *                   stops early)
 *   started_at, ended_at
 *   measurements    combined over the recovery probes: injected_at,
 *                   reverted_at, impact_at, detected_at, recovered_at,
 *                   last_failure_at (times null when they did not happen),
 *                   recovery_time_ms and resolution_ms (null unless it
 *                   recovered or was not impacted), no_impact,
 *                   recovered_after_revert, unobserved, n_results, n_failures,
 *                   n_late (attempts the controller could not judge),
 *                   longest_unhealthy_ms, healthy_at_end,
 *                   steady_state_returned.
 *   run_id          this run's id (write probes tag their records with it)
 *   rpo_ms          the worst data loss the write probes measured (null
 *                   unless every write probe read its records back)
 *   objectives      {rto_ms, rpo_ms}: the objective, or null when not set;
 *                   impact: "required" | "optional"; availability (null, or
 *                   {target (a fraction), failures_per_year, mtbf_ms,
 *                   redundancy, measured, availability, downtime_ms_per_year,
 *                   max_mttr_ms, pass})
 *   verdict         also "pass_no_impact": every objective held and the
 *                   faults had no visible effect (impact: optional)
 *   faults[]        one per fault per host: name, host {name, address, port},
 *                   kind, parameters, start_ms, duration_ms, id (null if never
 *                   applied), scheduled_at, applied_at, reverted_at,
 *                   agent_applied_at, agent_reverted_at (the agent's clock), outcome,
 *                   revert_failed, detail, chosen (false: a where: candidate
 *                   not hit), where (null, or {probe, checked, matched,
 *                   detail}: the check of this candidate)
 *   probes[]        name, kind, target, interval_ms, timeout_ms, rise, fall,
 *                   in_recovery, measurement (same fields as measurements,
 *                   null when not measured), counts {attempts, ok, failed,
 *                   timeout, late}, late_threshold_ms, schedule
 *                   {late_starts, max_start_late_ms, skipped}, health[]
 *                   {at, healthy} (every change), failures[] and late[]:
 *                   runs of consecutive non-ok attempts {first_at, last_at,
 *                   count, outcome, detail, last_detail}; every non-ok
 *                   attempt is in one; attempts_file (as above); data (write
 *                   probes: {acknowledged, survived, lost, in_doubt, unknown,
 *                   rpo_ms, resolution_ms, rpo_lower_bound, lost_ranges[]
 *                   {first, last}, lost_ranges_total, summary, error}, else null)
 *
 * Every time is RFC 3339 UTC with milliseconds ("2026-11-25T16:51:00.123Z"),
 * controller wall clock. Numbers are integers in ms unless named otherwise.
 *
 * parameters is the kind's FaultSpec message (KillProcess, NetworkDrop, ...)
 * written generically from protobuf-c's field descriptors, so a new kind or
 * field appears without touching this file: proto field names, every field
 * of the message (proto3 zero values included, as they carry defaults such as
 * "signal 0 = KILL"), only the chosen member of a oneof, enums as their value
 * name without the enum's prefix, lower case ("ingress", "repeat").
 *
 * Text that came from outside (probe details, agent details) may not be
 * UTF-8; bytes that are not are written as U+FFFD, so the document always
 * parses. */
#include "controller/report/report.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "controller/experiment/faultspec.h"

/* ------------------------------------------------------------------ shared */

size_t fl_report_utf8_seq(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    if (s[0] < 0x80)
        return 1;
    size_t n;
    uint32_t cp;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        cp = s[0] & 0x1fu;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        cp = s[0] & 0x0fu;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0u) != 0x80u) /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

int fl_report_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    if (path == NULL || data == NULL || err == NULL)
        return -EINVAL;
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        snprintf(err, errlen, "%s: the report path is too long; choose a shorter --report-dir",
                 path);
        return -ENAMETOOLONG;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen,
                 "%s: cannot create the report: %s; check that the report directory exists "
                 "and is writable",
                 tmp, strerror(e));
        return -e;
    }
    int rc = 0;
    const char *what = "write";
    if (fchmod(fd, 0644) != 0) {
        rc = -errno;
        what = "set the mode of";
    }
    size_t done = 0;
    while (rc == 0 && done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
        } else {
            done += (size_t)w;
        }
    }
    if (rc == 0 && fsync(fd) != 0) {
        rc = -errno;
        what = "flush";
    }
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
        what = "close";
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
        what = "rename into place";
    }
    if (rc != 0) {
        unlink(tmp);
        snprintf(err, errlen,
                 "%s: cannot %s the report: %s; check the free space and "
                 "permissions of the report directory",
                 path, what, strerror(-rc));
    }
    return rc;
}

/* ----------------------------------------------------------------- builders */

/* Sets key to v (stolen) and remembers a failure: v NULL means out of memory. */
static void put(json_t *obj, const char *key, json_t *v, bool *ok)
{
    if (v == NULL || json_object_set_new(obj, key, v) != 0)
        *ok = false;
}

static void append(json_t *arr, json_t *v, bool *ok)
{
    if (v == NULL || json_array_append_new(arr, v) != 0)
        *ok = false;
}

/* A JSON string from bytes that may not be UTF-8 (invalid bytes: U+FFFD). */
static json_t *text(const char *s)
{
    if (s == NULL)
        return json_null();
    size_t len = strlen(s);
    size_t i = 0;
    while (i < len) {
        size_t k = fl_report_utf8_seq(s + i);
        if (k == 0)
            break;
        i += k;
    }
    if (i == len)
        return json_stringn(s, len);
    char *buf = malloc(len * 3 + 1);
    if (buf == NULL)
        return NULL;
    size_t o = 0;
    for (i = 0; i < len;) {
        size_t k = fl_report_utf8_seq(s + i);
        if (k == 0) {
            memcpy(buf + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(buf + o, s + i, k);
            o += k;
            i += k;
        }
    }
    json_t *v = json_stringn(buf, o);
    free(buf);
    return v;
}

/* RFC 3339 with milliseconds, or null for 0 ("did not happen"). */
static json_t *when(uint64_t ms)
{
    if (ms == 0)
        return json_null();
    char buf[40];
    if (fl_format_rfc3339(ms, buf, sizeof(buf)) < 0)
        return json_null();
    return json_string(buf);
}

static json_t *integer(uint64_t v)
{
    return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* The measurement fields, shared by the combined measurement and each probe's. */
static json_t *measurement(const struct fl_measurement *m, uint64_t injected_at,
                           uint64_t reverted_at)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool ok = true;
    bool timed = m->recovered || m->no_impact;
    put(o, "injected_at", when(injected_at), &ok);
    put(o, "reverted_at", when(reverted_at), &ok);
    put(o, "impact_at", when(m->impacted ? m->impact_at : 0), &ok);
    put(o, "detected_at", when(m->detected ? m->detected_at : 0), &ok);
    put(o, "recovered_at", when(m->recovered ? m->recovered_at : 0), &ok);
    put(o, "last_failure_at", when(m->recovered ? m->last_failure_at : 0), &ok);
    put(o, "recovery_time_ms", timed ? integer(m->recovery_time_ms) : json_null(), &ok);
    put(o, "resolution_ms", timed ? integer(m->resolution_ms) : json_null(), &ok);
    put(o, "no_impact", json_boolean(m->no_impact), &ok);
    put(o, "recovered_after_revert", json_boolean(m->recovered_after_revert), &ok);
    put(o, "unobserved", json_boolean(m->unobserved), &ok);
    put(o, "n_results", integer(m->n_results), &ok);
    put(o, "n_failures", integer(m->n_failures), &ok);
    put(o, "n_late", integer(m->n_late), &ok);
    put(o, "longest_unhealthy_ms", integer(m->longest_unhealthy_ms), &ok);
    put(o, "healthy_at_end", json_boolean(m->healthy_at_end), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ------------------------------------------------- parameters, generically */

static json_t *message(const ProtobufCMessage *msg);

/* "DropAction" -> "DROP_ACTION_": the prefix protoc gives the enum's values. */
static const char *enum_value_name(const ProtobufCEnumDescriptor *d, int value, char *buf,
                                   size_t len)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(d, value);
    if (v == NULL)
        return NULL;
    size_t o = 0;
    for (const char *c = d->short_name; *c != '\0' && o + 2 < len; c++) {
        if (*c >= 'A' && *c <= 'Z' && c != d->short_name)
            buf[o++] = '_';
        buf[o++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
    }
    buf[o++] = '_';
    const char *name = v->name;
    if (strncmp(name, buf, o) == 0 && name[o] != '\0')
        name += o;
    size_t n = 0;
    for (; name[n] != '\0' && n + 1 < len; n++)
        buf[n] = (char)(name[n] >= 'A' && name[n] <= 'Z' ? name[n] - 'A' + 'a' : name[n]);
    buf[n] = '\0';
    return buf;
}

static size_t element_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* One value of field f stored at p. */
static json_t *value(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t v;
        memcpy(&v, p, sizeof(v));
        return json_integer(v);
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return json_integer(v);
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v;
        memcpy(&v, p, sizeof(v));
        return json_integer(v);
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        return integer(v);
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        float v;
        memcpy(&v, p, sizeof(v));
        return json_real(v);
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v;
        memcpy(&v, p, sizeof(v));
        return json_real(v);
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean v;
        memcpy(&v, p, sizeof(v));
        return json_boolean(v);
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int v;
        memcpy(&v, p, sizeof(v));
        char buf[64];
        const char *name = enum_value_name(f->descriptor, v, buf, sizeof(buf));
        return name ? json_string(name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *v;
        memcpy(&v, p, sizeof(v));
        return text(v);
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData v;
        memcpy(&v, p, sizeof(v));
        char *hex = malloc(v.len * 2 + 1);
        if (hex == NULL)
            return NULL;
        for (size_t i = 0; i < v.len; i++)
            snprintf(hex + 2 * i, 3, "%02x", v.data[i]);
        hex[v.len * 2] = '\0';
        json_t *j = json_string(hex);
        free(hex);
        return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *v;
        memcpy(&v, p, sizeof(v));
        return v ? message(v) : json_null();
    }
    }
    return json_null();
}

static json_t *message(const ProtobufCMessage *msg)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool ok = true;
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    for (unsigned i = 0; i < d->n_fields && ok; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t chosen;
            memcpy(&chosen, base + f->quantifier_offset, sizeof(chosen));
            if (chosen != f->id)
                continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0) {
            protobuf_c_boolean has;
            memcpy(&has, base + f->quantifier_offset, sizeof(has));
            if (!has)
                continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n;
            const char *arr;
            memcpy(&n, base + f->quantifier_offset, sizeof(n));
            memcpy(&arr, base + f->offset, sizeof(arr));
            json_t *a = json_array();
            for (size_t k = 0; a != NULL && k < n && ok; k++)
                append(a, value(f, arr + k * element_size(f->type)), &ok);
            put(o, f->name, a, &ok);
        } else {
            put(o, f->name, value(f, base + f->offset), &ok);
        }
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The chosen member of FaultSpec's `kind` oneof, as an object. */
static json_t *parameters(const Faultline__FaultSpec *spec)
{
    if (spec == NULL)
        return json_null();
    const ProtobufCMessageDescriptor *d = spec->base.descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->type != PROTOBUF_C_TYPE_MESSAGE ||
            (uint32_t)spec->kind_case != f->id)
            continue;
        return value(f, (const char *)spec + f->offset);
    }
    return json_object();
}

/* -------------------------------------------------------------- the record */

static json_t *host(const struct fl_host *h)
{
    if (h == NULL)
        return json_null();
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool ok = true;
    put(o, "name", text(h->name), &ok);
    put(o, "address", text(h->address), &ok);
    put(o, "port", json_integer(h->port), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *fault(const struct fl_run_record *r, const struct fl_run_fault *rf)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool ok = true;
    const struct fl_fault *f = rf->fault;
    put(o, "name", text(f ? f->name : NULL), &ok);
    put(o, "host", host(rf->host), &ok);
    put(o, "kind", text(f ? fl_faultspec_kind(f->spec) : NULL), &ok);
    put(o, "parameters", parameters(f ? f->spec : NULL), &ok);
    put(o, "start_ms", f ? integer(f->start_ms) : json_null(), &ok);
    put(o, "duration_ms", f ? integer(f->duration_ms) : json_null(), &ok);
    put(o, "id", rf->id[0] ? text(rf->id) : json_null(), &ok);
    put(o, "scheduled_at", when(rf->scheduled_at_ms), &ok);
    put(o, "applied_at", when(rf->applied_at_ms), &ok);
    put(o, "reverted_at", when(rf->reverted_at_ms), &ok);
    /* the same events by the agent's own clock (what it applied and reverted) */
    put(o, "agent_applied_at", when(rf->agent_applied_at_ms), &ok);
    put(o, "agent_reverted_at", when(rf->agent_reverted_at_ms), &ok);
    put(o, "outcome", text(rf->outcome), &ok);
    put(o, "revert_failed", json_boolean(rf->revert_failed), &ok);
    put(o, "detail", text(rf->detail), &ok);
    put(o, "chosen", json_boolean(rf->chosen), &ok);
    json_t *wh = json_null();
    if (rf->where && f != NULL) {
        wh = json_object();
        if (wh != NULL) {
            put(wh, "probe", text(r->e->probes[f->target.where_probe].name), &ok);
            put(wh, "checked", json_boolean(rf->where_checked), &ok);
            put(wh, "matched", json_boolean(rf->where_ok), &ok);
            put(wh, "detail", rf->where_checked ? text(rf->where_detail) : json_null(), &ok);
        }
    }
    put(o, "where", wh, &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *probe_target(const struct fl_probe_spec *s)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool ok = true;
    switch (s->type) {
    case FL_PROBE_HTTP:
        put(o, "method", text(s->u.http.method ? s->u.http.method : "GET"), &ok);
        put(o, "url", text(s->u.http.url), &ok);
        break;
    case FL_PROBE_TCP:
        put(o, "host", text(s->u.tcp.host), &ok);
        put(o, "port", json_integer(s->u.tcp.port), &ok);
        break;
    case FL_PROBE_EXEC: {
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < s->u.exec.argc && ok; i++)
            append(a, text(s->u.exec.argv[i]), &ok);
        put(o, "argv", a, &ok);
        put(o, "expect_exit", json_integer(s->u.exec.expect_exit), &ok);
        put(o, "expect_output",
            s->u.exec.expect_output ? text(s->u.exec.expect_output) : json_null(), &ok);
        break;
    }
    case FL_PROBE_SSH:
        put(o, "host", text(s->u.ssh.host), &ok);
        put(o, "command", text(s->u.ssh.command), &ok);
        put(o, "expect_exit", json_integer(s->u.ssh.expect_exit), &ok);
        break;
    case FL_PROBE_POSTGRES:
        /* the DSN may carry a password: only the table is written */
        put(o, "table", text(s->u.data.table ? s->u.data.table : "faultline_writes"), &ok);
        break;
    case FL_PROBE_REDIS: {
        put(o, "address", s->u.data.address ? text(s->u.data.address) : json_null(), &ok);
        json_t *a = json_array();
        for (size_t i = 0; a != NULL && i < s->u.data.n_sentinels && ok; i++)
            append(a, text(s->u.data.sentinels[i]), &ok);
        put(o, "sentinels", a, &ok);
        put(o, "master_name", s->u.data.master_name ? text(s->u.data.master_name) : json_null(),
            &ok);
        put(o, "key", text(s->u.data.key ? s->u.data.key : "faultline_writes"), &ok);
        put(o, "wait_replicas", json_integer(s->u.data.wait_replicas), &ok);
        break;
    }
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* "attempts.jsonl" when the run wrote one (whole or cut short), else null. */
static json_t *attempts_file(const struct fl_run_record *r)
{
    return r->attempts_lines > 0 || r->attempts_written ? json_string("attempts.jsonl")
                                                        : json_null();
}

static json_t *probe(const struct fl_run_record *r, const struct fl_run_probe *p)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool ok = true;
    const struct fl_probe_spec *s = p->spec;
    put(o, "name", text(s ? s->name : NULL), &ok);
    put(o, "kind", s ? json_string(fl_probe_type_name(s->type)) : json_null(), &ok);
    put(o, "target", s ? probe_target(s) : json_null(), &ok);
    put(o, "interval_ms", s ? integer(s->interval_ms) : json_null(), &ok);
    put(o, "timeout_ms", s ? integer(s->timeout_ms) : json_null(), &ok);
    put(o, "rise", s ? json_integer(s->rise) : json_null(), &ok);
    put(o, "fall", s ? json_integer(s->fall) : json_null(), &ok);
    put(o, "in_recovery", json_boolean(p->in_recovery), &ok);
    put(o, "template", json_boolean(s != NULL && s->is_template), &ok);
    put(o, "measurement",
        p->measured ? measurement(&p->m, r->injected_at_ms, r->reverted_at_ms) : json_null(), &ok);
    const struct fl_probe_counts *c = &p->tl.counts;
    json_t *counts = json_object();
    if (counts != NULL) {
        put(counts, "attempts", integer(c->attempts), &ok);
        put(counts, "ok", integer(c->ok), &ok);
        put(counts, "failed", integer(c->failed), &ok);
        put(counts, "timeout", integer(c->timeout), &ok);
        put(counts, "late", integer(c->late), &ok);
    }
    put(o, "counts", counts, &ok);
    put(o, "late_threshold_ms",
        s ? integer(fl_probe_late_threshold_ms(s->timeout_ms ? s->timeout_ms : 1000)) : json_null(),
        &ok);
    json_t *sched = json_object();
    if (sched != NULL) {
        put(sched, "late_starts", integer(p->stats.late_starts), &ok);
        put(sched, "max_start_late_ms", integer(p->stats.max_start_late_ms), &ok);
        put(sched, "skipped", integer(p->stats.skipped), &ok);
    }
    put(o, "schedule", sched, &ok);
    json_t *health = json_array();
    for (size_t i = 0; health != NULL && i < p->tl.n_changes && ok; i++) {
        json_t *e = json_object();
        if (e != NULL) {
            put(e, "at", when(p->tl.changes[i].at_ms), &ok);
            put(e, "healthy", json_boolean(p->tl.changes[i].state == FL_HEALTH_HEALTHY), &ok);
        }
        append(health, e, &ok);
    }
    put(o, "health", health, &ok);
    /* every non-ok attempt, in runs: "failures" (failed, timeout) and "late" */
    json_t *fails = json_array(), *late = json_array();
    for (size_t i = 0; fails != NULL && late != NULL && i < p->tl.n_runs && ok; i++) {
        const struct fl_attempt_run *run = &p->tl.runs[i];
        json_t *e = json_object();
        if (e != NULL) {
            put(e, "first_at", when(run->first_at_ms), &ok);
            put(e, "last_at", when(run->last_at_ms), &ok);
            put(e, "count", integer(run->count), &ok);
            put(e, "outcome", json_string(fl_probe_outcome_name(run->outcome)), &ok);
            put(e, "detail", text(run->detail), &ok);
            put(e, "last_detail", text(run->last_detail), &ok);
        }
        append(run->outcome == FL_OUTCOME_LATE ? late : fails, e, &ok);
    }
    put(o, "failures", fails, &ok);
    put(o, "late", late, &ok);
    json_t *data = json_null();
    if (p->is_writer || (s != NULL && fl_probe_is_writer(s))) {
        data = json_object();
        const struct fl_rpo_result *x = &p->rpo;
        if (data != NULL && p->rpo_measured) {
            put(data, "acknowledged", integer(x->acknowledged), &ok);
            put(data, "survived", integer(x->survived), &ok);
            put(data, "lost", integer(x->lost), &ok);
            put(data, "in_doubt", integer(x->in_doubt), &ok);
            put(data, "unknown", integer(x->unknown), &ok);
            put(data, "rpo_ms", integer(x->rpo_ms), &ok);
            put(data, "resolution_ms", integer(x->resolution_ms), &ok);
            put(data, "rpo_lower_bound", json_boolean(x->rpo_lower_bound), &ok);
            json_t *ranges = json_array();
            for (size_t i = 0; ranges != NULL && i < x->n_ranges && ok; i++) {
                json_t *rg = json_object();
                if (rg != NULL) {
                    put(rg, "first", integer(x->ranges[i].first), &ok);
                    put(rg, "last", integer(x->ranges[i].last), &ok);
                }
                append(ranges, rg, &ok);
            }
            put(data, "lost_ranges", ranges, &ok);
            put(data, "lost_ranges_total", integer(x->n_ranges_total), &ok);
            put(data, "summary", text(x->summary), &ok);
            put(data, "error", json_null(), &ok);
        } else if (data != NULL) {
            put(data, "error", text(p->rpo_error[0] ? p->rpo_error : "not read back"), &ok);
        }
    }
    put(o, "data", data, &ok);
    put(o, "attempts_file", attempts_file(r), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The controller's own lateness (runrecord.h, struct fl_controller_figures). */
static json_t *controller(const struct fl_controller_figures *c)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    bool ok = true;
    put(o, "overloaded", json_boolean(c->overloaded), &ok);
    put(o, "attempts", integer(c->attempts), &ok);
    put(o, "late", integer(c->late), &ok);
    put(o, "late_starts", integer(c->late_starts), &ok);
    put(o, "skipped", integer(c->skipped), &ok);
    put(o, "max_start_late_ms", integer(c->max_start_late_ms), &ok);
    put(o, "longest_stall_ms", integer(c->longest_stall_ms), &ok);
    put(o, "threshold_ms", integer(c->late_threshold_ms), &ok);
    put(o, "overload_percent", json_integer(FL_RUN_OVERLOAD_PERCENT), &ok);
    put(o, "probe_threads", json_integer(c->probe_threads), &ok);
    if (c->probe_threads_from != NULL)
        put(o, "probe_threads_from", json_string(c->probe_threads_from), &ok);
    put(o, "queue_lost", integer(c->queue_lost), &ok);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *objective(bool has, uint64_t ms)
{
    return has ? integer(ms) : json_null();
}

/* objectives.availability: null unless the experiment sets one. */
static json_t *availability(const struct fl_run_record *r)
{
    const struct fl_objectives *o = &r->e->objectives;
    if (!o->has_availability)
        return json_null();
    json_t *av = json_object();
    if (av == NULL)
        return NULL;
    bool ok = true;
    put(av, "target", json_real(o->avail_target), &ok);
    put(av, "failures_per_year",
        o->avail_failures_per_year > 0 ? json_real(o->avail_failures_per_year) : json_null(), &ok);
    put(av, "mtbf_ms", o->avail_mtbf_ms ? integer(o->avail_mtbf_ms) : json_null(), &ok);
    put(av, "redundancy", json_integer(o->avail_redundancy), &ok);
    put(av, "measured", json_boolean(r->avail_measured), &ok);
    if (r->avail_measured) {
        put(av, "availability", json_real(r->avail_availability), &ok);
        put(av, "downtime_ms_per_year", json_real(r->avail_downtime_ms), &ok);
        put(av, "max_mttr_ms", json_integer(r->avail_max_mttr_ms), &ok);
        put(av, "pass", json_boolean(r->avail_pass), &ok);
    }
    if (!ok) {
        json_decref(av);
        return NULL;
    }
    return av;
}

static json_t *document(const struct fl_run_record *r)
{
    const struct fl_experiment *e = r->e;
    json_t *doc = json_object();
    if (doc == NULL)
        return NULL;
    bool ok = true;
    put(doc, "format", json_integer(FL_REPORT_JSON_FORMAT), &ok);
#ifdef FL_VERSION
    put(doc, "faultline_version", json_string(FL_VERSION), &ok);
#endif
    json_t *ex = json_object();
    if (ex != NULL) {
        put(ex, "name", text(e->name), &ok);
        put(ex, "description", text(e->description), &ok);
        put(ex, "path", text(e->path), &ok);
    }
    put(doc, "experiment", ex, &ok);
    put(doc, "verdict", json_string(fl_measure_verdict_name(r->verdict)), &ok);
    put(doc, "reason", text(r->reason), &ok);
    put(doc, "abort_reason", r->abort_reason[0] ? text(r->abort_reason) : json_null(), &ok);
    put(doc, "run_id", text(r->run_id), &ok);
    put(doc, "rpo_ms", r->rpo_measured ? integer(r->rpo_ms) : json_null(), &ok);
    put(doc, "controller", controller(&r->controller), &ok);
    put(doc, "controller_overloaded",
        r->controller.overloaded ? controller(&r->controller) : json_null(), &ok);
    put(doc, "attempts_file", attempts_file(r), &ok);
    put(doc, "attempts_complete", json_boolean(r->attempts_written), &ok);
    put(doc, "attempts_error", r->attempts_error[0] ? text(r->attempts_error) : json_null(), &ok);
    put(doc, "started_at", when(r->started_at_ms), &ok);
    put(doc, "ended_at", when(r->ended_at_ms), &ok);

    json_t *m;
    if (r->measured) {
        m = measurement(&r->m, r->injected_at_ms, r->reverted_at_ms);
    } else {
        struct fl_measurement none;
        memset(&none, 0, sizeof(none));
        none.unobserved = true;
        m = measurement(&none, r->injected_at_ms, r->reverted_at_ms);
    }
    if (m != NULL)
        put(m, "steady_state_returned", json_boolean(r->steady_state_returned), &ok);
    put(doc, "measurements", m, &ok);

    json_t *obj = json_object();
    if (obj != NULL) {
        put(obj, "rto_ms", objective(e->objectives.has_rto, e->objectives.rto_ms), &ok);
        put(obj, "rpo_ms", objective(e->objectives.has_rpo, e->objectives.rpo_ms), &ok);
        put(obj, "impact", json_string(e->objectives.impact_required ? "required" : "optional"),
            &ok);
        put(obj, "availability", availability(r), &ok);
    }
    put(doc, "objectives", obj, &ok);

    json_t *faults = json_array();
    for (size_t i = 0; faults != NULL && i < r->n_faults && ok; i++)
        append(faults, fault(r, &r->faults[i]), &ok);
    put(doc, "faults", faults, &ok);

    json_t *probes = json_array();
    for (size_t i = 0; probes != NULL && i < r->n_probes && ok; i++)
        append(probes, probe(r, &r->probes[i]), &ok);
    put(doc, "probes", probes, &ok);

    if (!ok) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

int fl_report_json(const struct fl_run_record *r, const char *path, char *err, size_t errlen)
{
    if (r == NULL || r->e == NULL || path == NULL || err == NULL)
        return -EINVAL;
    json_t *doc = document(r);
    if (doc == NULL) {
        snprintf(err, errlen, "%s: out of memory while building the report", path);
        return -ENOMEM;
    }
    char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (s == NULL) {
        snprintf(err, errlen, "%s: out of memory while writing the report", path);
        return -ENOMEM;
    }
    size_t len = strlen(s);
    /* One trailing newline, as text files end. */
    char *full = malloc(len + 2);
    if (full == NULL) {
        free(s);
        snprintf(err, errlen, "%s: out of memory while writing the report", path);
        return -ENOMEM;
    }
    memcpy(full, s, len);
    full[len] = '\n';
    full[len + 1] = '\0';
    free(s);
    int rc = fl_report_write_atomic(path, full, len + 1, err, errlen);
    free(full);
    return rc;
}
