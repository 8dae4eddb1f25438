/* controller/serve: cron parsing, time zones from TZif, next due time across
 * DST transitions (known answers worked out by hand, wall<->UTC conversions
 * checked with Python's zoneinfo), windows, missed policies, jitter, the
 * schedule block's parser and its errors, and a property test. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/yamldoc.h"
#include "controller/serve/schedule.h"

/* "2026-03-29T01:00Z" -> UTC seconds. */
static int64_t utc(const char *s)
{
    int y, mo, d, h, mi;
    assert_int_equal(sscanf(s, "%d-%d-%dT%d:%dZ", &y, &mo, &d, &h, &mi), 5);
    return fl_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60;
}

static void load(const char *zone, struct fl_tz *tz)
{
    char err[256];
    int rc = fl_tz_load(NULL, zone, tz, err, sizeof err);
    if (rc < 0)
        fail_msg("%s", err);
}

static struct fl_schedule cron_sched(const char *expr)
{
    struct fl_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = FL_SCHED_CRON;
    char err[256];
    size_t col;
    if (fl_cron_parse(expr, &s.cron, &col, err, sizeof err) < 0)
        fail_msg("%s: %s", expr, err);
    s.starting_deadline_s = FL_SCHED_DEFAULT_DEADLINE_S;
    return s;
}

static void test_utc_helper(void **state)
{
    (void)state;
    /* literal values from python3 zoneinfo / datetime */
    assert_int_equal(utc("2026-03-29T01:00Z"), 1774746000);
    assert_int_equal(utc("2028-02-29T00:00Z"), 1835395200);
    assert_int_equal(utc("2026-10-03T15:30Z"), 1791041400);
    assert_int_equal(fl_weekday(utc("2026-11-28T00:00Z") / 86400), 6); /* Saturday */
}

static void test_tz_offsets(void **state)
{
    (void)state;
    struct fl_tz b, ny, lh;
    load("Europe/Berlin", &b);
    load("America/New_York", &ny);
    load("Australia/Lord_Howe", &lh);
    assert_int_equal(fl_tz_offset(&b, utc("2026-03-29T00:59Z")), 3600);
    assert_int_equal(fl_tz_offset(&b, utc("2026-03-29T01:00Z")), 7200);
    assert_int_equal(fl_tz_offset(&b, utc("2026-10-25T00:59Z")), 7200);
    assert_int_equal(fl_tz_offset(&b, utc("2026-10-25T01:00Z")), 3600);
    /* far past the file's explicit transitions: the footer rule */
    assert_int_equal(fl_tz_offset(&b, utc("2150-07-01T00:00Z")), 7200);
    assert_int_equal(fl_tz_offset(&b, utc("2150-01-01T00:00Z")), 3600);
    assert_int_equal(fl_tz_offset(&ny, utc("2026-11-01T05:59Z")), -4 * 3600);
    assert_int_equal(fl_tz_offset(&ny, utc("2026-11-01T06:00Z")), -5 * 3600);
    assert_int_equal(fl_tz_offset(&lh, utc("2026-10-03T15:29Z")), 10 * 3600 + 1800);
    assert_int_equal(fl_tz_offset(&lh, utc("2026-10-03T15:30Z")), 11 * 3600);
    assert_int_equal(fl_tz_offset(&lh, utc("2026-04-04T15:00Z")), 10 * 3600 + 1800);
    /* wall -> UTC: gap, overlap, normal */
    int64_t u[2], gap = 0;
    int64_t w = fl_days_from_civil(2026, 3, 29) * 86400 + 2 * 3600 + 30 * 60;
    assert_int_equal(fl_tz_from_wall(&b, w, u, &gap), 0);
    assert_int_equal(gap, utc("2026-03-29T01:00Z"));
    w = fl_days_from_civil(2026, 10, 25) * 86400 + 2 * 3600 + 30 * 60;
    assert_int_equal(fl_tz_from_wall(&b, w, u, &gap), 2);
    assert_int_equal(u[0], utc("2026-10-25T00:30Z"));
    assert_int_equal(u[1], utc("2026-10-25T01:30Z"));
    w = fl_days_from_civil(2026, 7, 1) * 86400 + 12 * 3600;
    assert_int_equal(fl_tz_from_wall(&b, w, u, &gap), 1);
    assert_int_equal(u[0], utc("2026-07-01T10:00Z"));
    fl_tz_free(&b);
    fl_tz_free(&ny);
    fl_tz_free(&lh);
}

static void test_tz_names(void **state)
{
    (void)state;
    /* "../../../etc/localtime" resolves to a real TZif file from the zone
     * directory: without the name check it loads (the attack: any file the
     * daemon can read is opened by a name from an experiment file). */
    static const char *const bad[] = {"../../../etc/localtime",
                                      "Etc/../../../../etc/localtime",
                                      "../etc/passwd",
                                      "/etc/localtime",
                                      "Europe/../../etc",
                                      "Europe//Berlin",
                                      "Europe/Berlin/",
                                      ".",
                                      "Eu rope",
                                      "",
                                      NULL};
    char err[256];
    struct fl_tz tz;
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(fl_tz_load(NULL, bad[i], &tz, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "time zone"));
    }
    assert_true(fl_tz_load(NULL, "Europe/Berln", &tz, err, sizeof err) < 0);
    assert_non_null(strstr(err, "unknown time zone 'Europe/Berln'"));
    /* not TZif */
    assert_int_equal(fl_tz_from_tzif("x", (const unsigned char *)"hello", 5, &tz, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "not a TZif file"));
    load("UTC", &tz);
    assert_int_equal(fl_tz_offset(&tz, 0), 0);
    fl_tz_free(&tz);
}

/* Never crash on a bad zone file: every truncation and single-byte flip of
 * a real one either loads or is refused with a message. */
static void test_tzif_damaged(void **state)
{
    (void)state;
    FILE *f = fopen(FL_TZ_DIR "/Australia/Lord_Howe", "rb");
    assert_non_null(f);
    static unsigned char buf[65536], copy[65536];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(len > 100 && len < sizeof buf);
    char err[256];
    struct fl_tz tz;
    for (size_t cut = 0; cut < len; cut++) {
        err[0] = '\0';
        if (fl_tz_from_tzif("cut", buf, cut, &tz, err, sizeof err) == 0)
            fl_tz_free(&tz);
        else
            assert_non_null(strstr(err, "time zone 'cut'"));
    }
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, buf, len);
        copy[i] ^= (unsigned char)(0x80 | i);
        if (fl_tz_from_tzif("flip", copy, len, &tz, err, sizeof err) == 0)
            fl_tz_free(&tz);
    }
}

struct kat {
    const char *zone, *cron, *after, *want, *why;
};

static const struct kat kats[] = {
    /* Europe/Berlin, spring forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z) */
    {"Europe/Berlin", "30 2 * * *", "2026-03-28T12:00Z", "2026-03-29T01:00Z",
     "02:30 is skipped: a fixed-time job runs at the jump"},
    {"Europe/Berlin", "30 2 * * *", "2026-03-29T01:00Z", "2026-03-30T00:30Z", "next day, CEST"},
    {"Europe/Berlin", "0 * * * *", "2026-03-29T00:00Z", "2026-03-29T01:00Z",
     "hourly: 01:00 CET, then 03:00 CEST (02:00 does not exist, not caught up)"},
    {"Europe/Berlin", "30 * * * *", "2026-03-29T00:30Z", "2026-03-29T01:30Z",
     "hourly :30: 02:30 skipped, 03:30 CEST next"},
    /* fall back 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z) */
    {"Europe/Berlin", "30 2 * * *", "2026-10-24T12:00Z", "2026-10-25T00:30Z",
     "repeated 02:30: first occurrence"},
    {"Europe/Berlin", "30 2 * * *", "2026-10-25T00:30Z", "2026-10-26T01:30Z",
     "not the second occurrence"},
    {"Europe/Berlin", "0 * * * *", "2026-10-25T00:00Z", "2026-10-25T01:00Z",
     "hourly runs in the repeated hour too (02:00 CET)"},
    {"Europe/Berlin", "0 * * * *", "2026-10-25T01:00Z", "2026-10-25T02:00Z", "03:00 CET"},
    {"Europe/Berlin", "15 2 * * *", "2027-03-27T12:00Z", "2027-03-28T01:00Z", "2027 gap"},
    {"Europe/Berlin", "15 2 * * *", "2027-10-30T12:00Z", "2027-10-31T00:15Z",
     "2027 repeated hour, first"},
    {"Europe/Berlin", "15 2 * * *", "2027-10-31T00:15Z", "2027-11-01T01:15Z",
     "2027, not the second"},
    /* America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z);
     * 2026-11-01 02:00 EDT -> 01:00 EST (06:00Z) */
    {"America/New_York", "30 2 * * *", "2026-03-07T12:00Z", "2026-03-08T07:00Z", "gap: jump"},
    {"America/New_York", "30 1 * * *", "2026-10-31T12:00Z", "2026-11-01T05:30Z",
     "01:30 EDT, first"},
    {"America/New_York", "30 1 * * *", "2026-11-01T05:30Z", "2026-11-02T06:30Z", "not 01:30 EST"},
    {"America/New_York", "*/30 * * * *", "2026-11-01T05:45Z", "2026-11-01T06:00Z",
     "wildcard: 01:00 EST, the repeat"},
    {"America/New_York", "0 * * * *", "2026-03-08T06:00Z", "2026-03-08T07:00Z",
     "hourly: 01:00 EST then 03:00 EDT"},
    {"America/New_York", "0 2 * * *", "2027-03-13T12:00Z", "2027-03-14T07:00Z", "2027 gap"},
    {"America/New_York", "30 1 * * *", "2027-11-06T12:00Z", "2027-11-07T05:30Z",
     "2027 repeat, first"},
    /* Australia/Lord_Howe: 30-minute shift. 2026-10-04 02:00 +10:30 -> 02:30
     * +11 (2026-10-03T15:30Z); 2026-04-05 02:00 +11 -> 01:30 +10:30
     * (2026-04-04T15:00Z) */
    {"Australia/Lord_Howe", "15 2 * * *", "2026-10-03T00:00Z", "2026-10-03T15:30Z",
     "02:15 in the half-hour gap: at the jump"},
    {"Australia/Lord_Howe", "0 * * * *", "2026-10-03T15:00Z", "2026-10-03T16:00Z",
     "hourly: 02:00 skipped, 03:00 +11"},
    {"Australia/Lord_Howe", "45 1 * * *", "2026-04-04T00:00Z", "2026-04-04T14:45Z",
     "01:45 +11, first"},
    {"Australia/Lord_Howe", "45 1 * * *", "2026-04-04T14:45Z", "2026-04-05T15:15Z",
     "not 01:45 +10:30"},
    {"Australia/Lord_Howe", "*/15 * * * *", "2026-04-04T14:50Z", "2026-04-04T15:00Z",
     "wildcard: 01:30 +10:30, the repeat"},
    {"Australia/Lord_Howe", "0 * * * *", "2026-04-04T14:30Z", "2026-04-04T15:30Z",
     "hourly: 01:00 is not repeated, 02:00 +10:30 next"},
    {"Australia/Lord_Howe", "0 2 * * *", "2027-10-02T00:00Z", "2027-10-02T15:30Z", "2027 gap"},
    {"Australia/Lord_Howe", "40 1 * * *", "2027-04-03T00:00Z", "2027-04-03T14:40Z",
     "2027 repeat, first"},
    /* calendar */
    {"UTC", "0 0 29 2 *", "2026-03-01T00:00Z", "2028-02-29T00:00Z", "Feb 29"},
    {"UTC", "0 12 13 * 5", "2026-11-28T00:00Z", "2026-12-04T12:00Z", "dom+dow OR: Friday Dec 4"},
    {"UTC", "0 12 13 * 5", "2026-12-11T12:00Z", "2026-12-13T12:00Z", "dom+dow OR: Sunday Dec 13"},
    {"UTC", "0 0 */2 * 1", "2026-11-28T00:00Z", "2026-12-07T00:00Z",
     "dom '*/2' is '*': AND, odd day and Monday (Nov 30 is even)"},
    {"UTC", "0 0 13 * *", "2026-11-28T00:00Z", "2026-12-13T00:00Z", "dom alone"},
    {"UTC", "*/7 * * * *", "2026-11-28T10:56Z", "2026-11-28T11:00Z", "*/7 restarts each hour"},
    {"UTC", "*/7 * * * *", "2026-11-28T10:50Z", "2026-11-28T10:56Z", "*/7"},
    {"UTC", "1-20/3 * * * *", "2026-11-28T10:19Z", "2026-11-28T11:01Z", "range with step"},
    {"UTC", "@weekly", "2026-11-28T00:00Z", "2026-11-29T00:00Z", "@weekly: Sunday"},
    {"UTC", "@monthly", "2026-11-28T00:00Z", "2026-12-01T00:00Z", "@monthly"},
    {"UTC", "@yearly", "2026-11-28T00:00Z", "2027-01-01T00:00Z", "@yearly"},
    {"UTC", "@annually", "2026-11-28T00:00Z", "2027-01-01T00:00Z", "@annually"},
    {"UTC", "@daily", "2026-11-28T00:00Z", "2026-11-29T00:00Z", "@daily"},
    {"UTC", "@midnight", "2026-11-28T00:00Z", "2026-11-29T00:00Z", "@midnight"},
    {"UTC", "@HOURLY", "2026-11-28T00:00Z", "2026-11-28T01:00Z", "@hourly, any case"},
    {"UTC", "0 0 * * fri-sun", "2026-11-30T00:00Z", "2026-12-04T00:00Z",
     "fri-sun wraps to 5-7, as cronie"},
    {"UTC", "0 0 * * 6-0", "2026-11-28T00:00Z", "2026-11-29T00:00Z", "6-0: Saturday, Sunday"},
    {"UTC", "0 0 * * 7", "2026-11-28T00:00Z", "2026-11-29T00:00Z", "7 = Sunday"},
    {"UTC", "0 9 * jan,JUL Mon-fri", "2026-11-28T00:00Z", "2027-01-01T09:00Z",
     "names: Jan 1 2027 is a Friday"},
    {"Europe/Berlin", "30 2 * * 1-5", "2026-11-28T00:00Z", "2026-11-30T01:30Z",
     "the issue's example: Monday 02:30 CET"},
};

static void test_known_answers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kats / sizeof kats[0]; i++) {
        struct fl_tz tz;
        load(kats[i].zone, &tz);
        struct fl_schedule s = cron_sched(kats[i].cron);
        int64_t got;
        assert_int_equal(fl_schedule_next(&s, &tz, 0, utc(kats[i].after), &got), 0);
        if (got != utc(kats[i].want))
            fail_msg("%s '%s' after %s: want %s (%lld), got %lld (%s)", kats[i].zone, kats[i].cron,
                     kats[i].after, kats[i].want, (long long)utc(kats[i].want), (long long)got,
                     kats[i].why);
        fl_tz_free(&tz);
    }
}

static void test_every(void **state)
{
    (void)state;
    struct fl_schedule s;
    memset(&s, 0, sizeof s);
    s.kind = FL_SCHED_EVERY;
    s.every_s = 6 * 3600;
    int64_t o = utc("2026-03-29T00:17Z"), got;
    assert_int_equal(fl_schedule_next(&s, NULL, o, o - 100, &got), 0);
    assert_int_equal(got, o + 6 * 3600);
    assert_int_equal(fl_schedule_next(&s, NULL, o, o + 6 * 3600, &got), 0);
    assert_int_equal(got, o + 12 * 3600);
    assert_int_equal(fl_schedule_next(&s, NULL, o, o + 6 * 3600 - 1, &got), 0);
    assert_int_equal(got, o + 6 * 3600);
}

static void test_window(void **state)
{
    (void)state;
    struct fl_window w;
    char err[256];
    size_t col;
    struct fl_tz tz;
    load("Europe/Berlin", &tz);
    assert_int_equal(fl_window_parse("Mon-Fri 09:00-17:00", &w, &col, err, sizeof err), 0);
    /* Friday 2026-11-27 16:59 CET inside, 17:00 outside */
    assert_true(fl_window_contains(&w, &tz, utc("2026-11-27T15:59Z")));
    assert_false(fl_window_contains(&w, &tz, utc("2026-11-27T16:00Z")));
    int64_t t;
    assert_int_equal(fl_window_next(&w, &tz, utc("2026-11-27T16:00Z"), &t), 0);
    assert_int_equal(t, utc("2026-11-30T08:00Z")); /* Monday 09:00 CET */
    assert_int_equal(fl_window_next(&w, &tz, utc("2026-11-27T10:00Z"), &t), 0);
    assert_int_equal(t, utc("2026-11-27T10:00Z")); /* inside: itself */
    /* several ranges, a day list, a wrapping day range */
    assert_int_equal(fl_window_parse("sat,Sun 10:00-12:00,14:00-16:00", &w, &col, err, sizeof err),
                     0);
    assert_int_equal(fl_window_next(&w, &tz, utc("2026-11-28T11:30Z"), &t), 0); /* Sat 12:30 */
    assert_int_equal(t, utc("2026-11-28T13:00Z"));
    assert_int_equal(fl_window_parse("Fri-Mon 00:00-24:00", &w, &col, err, sizeof err), 0);
    assert_int_equal(w.days, 0x63);
    /* a window opening inside the spring-forward gap opens at the jump */
    assert_int_equal(fl_window_parse("Sun 02:30-04:00", &w, &col, err, sizeof err), 0);
    assert_int_equal(fl_window_next(&w, &tz, utc("2026-03-28T12:00Z"), &t), 0);
    assert_int_equal(t, utc("2026-03-29T01:00Z"));
    /* a window wholly inside the gap is skipped that day */
    assert_int_equal(fl_window_parse("Sun 02:10-02:50", &w, &col, err, sizeof err), 0);
    assert_int_equal(fl_window_next(&w, &tz, utc("2026-03-28T12:00Z"), &t), 0);
    assert_int_equal(t, utc("2026-04-05T00:10Z"));
    /* a weekly window wholly lost to the gap opens the week after (found by
     * the property test: the search looked only eight days ahead) */
    assert_int_equal(fl_window_parse("Sun 02:00-03:00", &w, &col, err, sizeof err), 0);
    assert_int_equal(fl_window_next(&w, &tz, utc("2026-03-26T19:52Z"), &t), 0);
    assert_int_equal(t, utc("2026-04-05T00:00Z"));
    /* every day */
    assert_int_equal(fl_window_parse("09:00-17:00", &w, &col, err, sizeof err), 0);
    assert_int_equal(w.days, 0x7f);
    fl_tz_free(&tz);
}

/* Windows, brute force: the next opening is inside, and no minute before it
 * (from t) is. */
static uint64_t wrng = 0x1234567u;
static unsigned wrnd(unsigned n)
{
    wrng ^= wrng << 13;
    wrng ^= wrng >> 7;
    wrng ^= wrng << 17;
    return (unsigned)(wrng % n);
}

static void test_window_property(void **state)
{
    (void)state;
    static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe"};
    static const char *const texts[] = {
        "Mon-Fri 09:00-17:00", "Sun 02:00-03:00", "Sat,Sun 01:15-02:45,20:00-24:00",
        "Fri-Mon 02:30-02:40", "00:00-00:01",     "Tue 01:30-02:10"};
    static const char *const around[] = {"2026-03-29T01:00Z", "2026-10-25T01:00Z",
                                         "2026-03-08T07:00Z", "2026-11-01T06:00Z",
                                         "2026-10-03T15:30Z", "2026-04-04T15:00Z"};
    for (int zi = 0; zi < 3; zi++) {
        struct fl_tz tz;
        load(zones[zi], &tz);
        for (int i = 0; i < 300; i++) {
            struct fl_window w;
            char err[256];
            size_t col;
            const char *wt = texts[wrnd(6)];
            assert_int_equal(fl_window_parse(wt, &w, &col, err, sizeof err), 0);
            int64_t t = utc(around[wrnd(6)]) - 3 * 86400 + (int64_t)wrnd(6 * 86400), got;
            if (fl_window_next(&w, &tz, t, &got) != 0)
                fail_msg("%s: window %s from %lld: none", zones[zi], wt, (long long)t);
            assert_true(got >= t);
            assert_true(fl_window_contains(&w, &tz, got));
            for (int64_t u = t; u < got; u += 60 - (u % 60 ? u % 60 : 0))
                if (fl_window_contains(&w, &tz, u))
                    fail_msg("%s: %lld inside, before next %lld (from %lld)", zones[zi],
                             (long long)u, (long long)got, (long long)t);
        }
        fl_tz_free(&tz);
    }
}

static void test_start_at(void **state)
{
    (void)state;
    struct fl_tz tz;
    load("Europe/Berlin", &tz);
    struct fl_schedule s = cron_sched("30 2 * * *");
    char err[256];
    size_t col;
    assert_int_equal(fl_window_parse("Mon-Fri 09:00-17:00", &s.window, &col, err, sizeof err), 0);
    s.has_window = true;
    s.starting_deadline_s = 30 * 60;
    int64_t start;
    /* 02:30 is outside the window, which opens 6.5 h later: past the deadline */
    assert_int_equal(fl_schedule_start_at(&s, &tz, "x", utc("2026-11-30T01:30Z"), &start),
                     -ETIMEDOUT);
    s.starting_deadline_s = 7 * 3600;
    assert_int_equal(fl_schedule_start_at(&s, &tz, "x", utc("2026-11-30T01:30Z"), &start), 0);
    assert_int_equal(start, utc("2026-11-30T08:00Z"));
    /* jitter inside the window: due + the same jitter every time */
    s.has_window = false;
    s.jitter_s = 600;
    int64_t due = utc("2026-11-30T10:00Z"), a, b;
    assert_int_equal(fl_schedule_start_at(&s, &tz, "exp", due, &a), 0);
    assert_int_equal(fl_schedule_start_at(&s, &tz, "exp", due, &b), 0);
    assert_int_equal(a, b);
    assert_true(a >= due && a <= due + 600);
    fl_tz_free(&tz);
    /* the server's own zone loads */
    assert_int_equal(fl_tz_load_local(&tz, err, sizeof err), 0);
    fl_tz_free(&tz);
}

static void test_missed(void **state)
{
    (void)state;
    struct fl_tz tz;
    load("UTC", &tz);
    struct fl_schedule s = cron_sched("0 * * * *");
    s.starting_deadline_s = 30 * 60;
    struct fl_missed_plan p;
    /* down from 10:00 to 13:20: 11:00, 12:00, 13:00 due; 13:00 within 30m */
    assert_int_equal(
        fl_schedule_missed(&s, &tz, 0, utc("2026-11-28T10:00Z"), utc("2026-11-28T13:20Z"), &p), 0);
    assert_true(p.run);
    assert_int_equal(p.run_at, utc("2026-11-28T13:00Z"));
    assert_int_equal(p.n_missed, 2);
    assert_true(p.n_missed_exact);
    assert_int_equal(p.first_missed, utc("2026-11-28T11:00Z"));
    assert_int_equal(p.last_missed, utc("2026-11-28T12:00Z"));
    /* 13:40: past the deadline, all three missed */
    assert_int_equal(
        fl_schedule_missed(&s, &tz, 0, utc("2026-11-28T10:00Z"), utc("2026-11-28T13:40Z"), &p), 0);
    assert_false(p.run);
    assert_int_equal(p.n_missed, 3);
    assert_int_equal(p.last_missed, utc("2026-11-28T13:00Z"));
    /* skip: all missed even within the deadline */
    s.missed = FL_MISSED_SKIP;
    assert_int_equal(
        fl_schedule_missed(&s, &tz, 0, utc("2026-11-28T10:00Z"), utc("2026-11-28T13:20Z"), &p), 0);
    assert_false(p.run);
    assert_int_equal(p.n_missed, 3);
    /* nothing due */
    assert_int_equal(
        fl_schedule_missed(&s, &tz, 0, utc("2026-11-28T10:00Z"), utc("2026-11-28T10:59Z"), &p), 0);
    assert_false(p.run);
    assert_int_equal(p.n_missed, 0);
    /* every minute, down for ten years: counted up to the bound, never further */
    s = cron_sched("* * * * *");
    assert_int_equal(
        fl_schedule_missed(&s, &tz, 0, utc("2016-11-28T10:00Z"), utc("2026-11-28T10:00Z"), &p), 0);
    assert_true(p.run);
    assert_int_equal(p.run_at, utc("2026-11-28T10:00Z"));
    assert_false(p.n_missed_exact);
    assert_int_equal(p.n_missed, FL_SCHED_MISSED_COUNT_MAX - 1);
    /* every: counted exactly by arithmetic */
    memset(&s, 0, sizeof s);
    s.kind = FL_SCHED_EVERY;
    s.every_s = 60;
    s.missed = FL_MISSED_SKIP;
    s.starting_deadline_s = 60;
    assert_int_equal(fl_schedule_missed(&s, &tz, 0, 0, 600000000, &p), 0);
    assert_true(p.n_missed_exact);
    assert_int_equal(p.n_missed, 10000000);
    assert_int_equal(p.last_missed, 600000000);
    fl_tz_free(&tz);
}

static void test_jitter(void **state)
{
    (void)state;
    struct fl_schedule s = cron_sched("0 * * * *");
    s.jitter_s = 600;
    int64_t due = utc("2026-11-28T10:00Z");
    int64_t a = fl_schedule_jitter(&s, fl_schedule_seed("db-failover", due));
    assert_int_equal(a, fl_schedule_jitter(&s, fl_schedule_seed("db-failover", due)));
    int64_t lo = 600, hi = 0;
    double sum = 0;
    for (int i = 0; i < 10000; i++) {
        int64_t j = fl_schedule_jitter(&s, fl_schedule_seed("x", due + i * 3600));
        assert_true(j >= 0 && j <= 600);
        lo = j < lo ? j : lo;
        hi = j > hi ? j : hi;
        sum += (double)j;
    }
    assert_true(lo < 10 && hi > 590);
    assert_true(sum / 10000 > 280 && sum / 10000 < 320);
    s.jitter_s = 0;
    assert_int_equal(fl_schedule_jitter(&s, 12345), 0);
}

/* --- the schedule block ---------------------------------------------------- */

static int parse_text(const char *yaml, struct fl_schedule *s, char *err, size_t errlen)
{
    struct fl_yaml_doc *doc;
    int rc = fl_yaml_load_buffer("exp.yaml", yaml, strlen(yaml), &doc, err, errlen);
    if (rc < 0)
        return rc;
    const struct fl_yaml_node *n = fl_yaml_get(doc->root, "schedule");
    assert_non_null(n);
    rc = fl_schedule_parse(n, s, err, errlen);
    fl_yaml_free(&doc);
    return rc;
}

static void test_parse_ok(void **state)
{
    (void)state;
    struct fl_schedule s;
    char err[512];
    int rc = parse_text("schedule:\n"
                        "  cron: \"30 2 * * 1-5\"\n"
                        "  timezone: Europe/Berlin\n"
                        "  jitter: 10m\n"
                        "  window: \"Mon-Fri 09:00-17:00\"\n"
                        "  missed: run_once\n"
                        "  starting_deadline: 30m\n"
                        "  paused: false\n",
                        &s, err, sizeof err);
    if (rc < 0)
        fail_msg("%s", err);
    assert_int_equal(s.kind, FL_SCHED_CRON);
    assert_string_equal(s.timezone, "Europe/Berlin");
    assert_int_equal(s.jitter_s, 600);
    assert_true(s.has_window);
    assert_int_equal(s.starting_deadline_s, 1800);
    assert_false(s.paused);
    rc = parse_text("schedule:\n  every: 6h\n  missed: skip\n  paused: yes\n", &s, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(s.kind, FL_SCHED_EVERY);
    assert_int_equal(s.every_s, 6 * 3600);
    assert_int_equal(s.missed, FL_MISSED_SKIP);
    assert_true(s.paused);
    fl_schedule_free(&s);
}

static const struct {
    const char *yaml, *want;
} bad[] = {
    {"schedule:\n  cron: \"0 0 * * *\"\n  timezon: UTC\n",
     "exp.yaml:3:3: unknown key 'timezon'; did you mean 'timezone'?"},
    {"schedule:\n  timezone: UTC\n", "exp.yaml:2:3: schedule needs 'cron' or 'every'"},
    {"schedule:\n  cron: \"0 0 * * *\"\n  every: 1h\n",
     "exp.yaml:3:10: schedule has both 'cron' and 'every'; give one of them"},
    {"schedule:\n  cron: \"0 24 * * *\"\n", "exp.yaml:2:12: cron hour: '24': out of range (0-23)"},
    {"schedule:\n  cron: \"0 0 * * *  *\"\n",
     "exp.yaml:2:21: cron expression has more than 5 fields"},
    {"schedule:\n  cron: \"0 0 * *\"\n",
     "exp.yaml:2:10: cron expression has 4 fields; 5 are needed"},
    {"schedule:\n  cron: \"0 0 * jna *\"\n",
     "exp.yaml:2:16: cron month: 'jna': unknown name; did you mean 'jan'?"},
    {"schedule:\n  cron: \"0 0 * * mom\"\n",
     "exp.yaml:2:18: cron day of week: 'mom': unknown name; did you mean 'mon'?"},
    {"schedule:\n  cron: \"*/0 * * * *\"\n", "exp.yaml:2:11: cron minute: '*/0': bad step"},
    {"schedule:\n  cron: \"5-1 * * * *\"\n",
     "exp.yaml:2:10: cron minute: '5-1': range goes backwards"},
    {"schedule:\n  cron: \"0 0 31 2 *\"\n",
     "exp.yaml:2:14: cron expression never fires: no chosen month has that day"},
    {"schedule:\n  cron: \"@reboot\"\n", "exp.yaml:2:10: cron '@reboot' is not supported"},
    {"schedule:\n  cron: \"@dayly\"\n",
     "exp.yaml:2:10: unknown cron macro '@dayly'; did you mean '@daily'?"},
    {"schedule:\n  cron: \"0,,5 * * * *\"\n", "cron minute: '': empty item in a list"},
    {"schedule:\n  cron: \"jan * * * *\"\n",
     "exp.yaml:2:10: cron minute: 'jan': names are not allowed in this field"},
    {"schedule:\n  cron: \"5/10 * * * *\"\n",
     "exp.yaml:2:10: cron minute: '5/10': a step needs a range or '*'"},
    {"schedule:\n  cron: \"0 0 * * 1~5\"\n", "exp.yaml:2:19: cron day of week: '1~5'"},
    {"schedule:\n  every: 0s\n", "exp.yaml:2:10: every must be from 1s to"},
    {"schedule:\n  every: 1500ms\n", "exp.yaml:2:10: every must be whole seconds"},
    {"schedule:\n  every: often\n", "exp.yaml:2:10:"},
    {"schedule:\n  every: 1h\n  timezone: UTC\n", "exp.yaml:3:13: 'timezone' has no effect"},
    {"schedule:\n  every: 1h\n  jitter: 2h\n",
     "exp.yaml:3:11: jitter must be shorter than 'every'"},
    {"schedule:\n  cron: \"@daily\"\n  timezone: ../../etc/shadow\n",
     "exp.yaml:3:13: time zone '../../etc/shadow': empty, '.' or '..' component"},
    {"schedule:\n  cron: \"@daily\"\n  timezone: /etc/localtime\n",
     "exp.yaml:3:13: time zone '/etc/localtime': an IANA name, not a path"},
    {"schedule:\n  cron: \"@daily\"\n  timezone: Europe/Berln\n",
     "exp.yaml:3:13: unknown time zone 'Europe/Berln'"},
    {"schedule:\n  cron: \"@daily\"\n  missed: run_onse\n",
     "exp.yaml:3:11: unknown missed policy 'run_onse'; did you mean 'run_once'?"},
    {"schedule:\n  cron: \"@daily\"\n  window: \"Mon-Fry 09:00-17:00\"\n",
     "exp.yaml:3:16: window: 'Fry': unknown day; did you mean 'fri'?"},
    {"schedule:\n  cron: \"@daily\"\n  window: \"Mon 17:00-09:00\"\n",
     "exp.yaml:3:16: window: '17:00-09:00': a range must end after it starts"},
    {"schedule:\n  cron: \"@daily\"\n  window: \"Mon\"\n",
     "exp.yaml:3:15: window: 'Mon': no time range"},
    {"schedule:\n  cron: \"@daily\"\n  window: \"Mon 9-17\"\n",
     "exp.yaml:3:16: window: '9-17': expected a time range HH:MM-HH:MM"},
    {"schedule:\n  cron: \"@daily\"\n  starting_deadline: 200h\n",
     "exp.yaml:3:22: starting_deadline must be from 1s to 604800s"},
    {"schedule:\n  cron: \"@daily\"\n  paused: maybe\n", "exp.yaml:3:11:"},
    {"schedule:\n  - cron\n", "exp.yaml:2:3: expected a mapping"},
};

static void test_parse_errors(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fl_schedule s;
        char err[512] = "";
        int rc = parse_text(bad[i].yaml, &s, err, sizeof err);
        if (rc != -EINVAL || !strstr(err, bad[i].want)) {
            print_error("case %zu: want '%s', got rc %d '%s'\n", i, bad[i].want, rc, err);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* --- property test ----------------------------------------------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void rand_field(char *out, size_t len, unsigned lo, unsigned hi, unsigned star_pct)
{
    unsigned k = rnd(100);
    unsigned a = lo + rnd(hi - lo + 1), b = lo + rnd(hi - lo + 1);
    if (a > b) {
        unsigned t = a;
        a = b;
        b = t;
    }
    if (k < star_pct)
        snprintf(out, len, "*");
    else if (k < star_pct + 15)
        snprintf(out, len, "*/%u", 1 + rnd(hi < 12 ? hi : 12));
    else if (k < star_pct + 35)
        snprintf(out, len, "%u", a);
    else if (k < star_pct + 50)
        snprintf(out, len, "%u-%u", a, b);
    else if (k < star_pct + 65)
        snprintf(out, len, "%u-%u/%u", a, b, 1 + rnd(5));
    else
        snprintf(out, len, "%u,%u", a, b);
}

/* Is u a due instant, by the rules in schedule.h, checked minute by minute? */
static bool due_at(const struct fl_schedule *s, const struct fl_tz *tz, int64_t u)
{
    const struct fl_cron *c = &s->cron;
    bool fixed = fl_cron_fixed_time(c);
    int64_t w = fl_tz_wall(tz, u);
    int64_t day = w >= 0 ? w / 86400 : (w - 86399) / 86400;
    int64_t y;
    unsigned m, d;
    fl_civil_from_days(day, &y, &m, &d);
    unsigned h = (unsigned)((w - day * 86400) / 3600),
             mi = (unsigned)((w - day * 86400) % 3600 / 60);
    bool match = u % 60 == 0 && fl_cron_day_matches(c, m, d, fl_weekday(day)) &&
                 ((c->hour >> h) & 1) && ((c->minute >> mi) & 1);
    if (match && fixed) {
        int64_t v[2], gap;
        if (fl_tz_from_wall(tz, w, v, &gap) == 2 && v[1] == u)
            match = false; /* the repeat of a fixed time */
    }
    if (match)
        return true;
    if (!fixed)
        return false;
    /* the jump of a spring-forward whose gap holds a matching wall minute */
    int32_t before = fl_tz_offset(tz, u - 1), after = fl_tz_offset(tz, u);
    if (after <= before)
        return false;
    for (int64_t gw = u + before; gw < u + after; gw += 60) {
        int64_t gd = gw >= 0 ? gw / 86400 : (gw - 86399) / 86400;
        fl_civil_from_days(gd, &y, &m, &d);
        unsigned gh = (unsigned)((gw - gd * 86400) / 3600),
                 gm = (unsigned)((gw - gd * 86400) % 3600 / 60);
        if (fl_cron_day_matches(c, m, d, fl_weekday(gd)) && ((c->hour >> gh) & 1) &&
            ((c->minute >> gm) & 1))
            return true;
    }
    return false;
}

static void test_property(void **state)
{
    (void)state;
    static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                                        "UTC"};
    static const char *const around[] = {
        "2026-03-29T01:00Z", "2026-10-25T01:00Z", "2026-03-08T07:00Z", "2026-11-01T06:00Z",
        "2026-10-03T15:30Z", "2026-04-04T15:00Z", "2027-10-02T15:30Z", "2027-06-15T00:00Z"};
    struct fl_tz tz[4];
    for (int i = 0; i < 4; i++)
        load(zones[i], &tz[i]);
    unsigned walked = 0;
    for (int iter = 0; iter < 3000; iter++) {
        char f[5][32], expr[200];
        rand_field(f[0], sizeof f[0], 0, 59, 20);
        rand_field(f[1], sizeof f[1], 0, 23, 40);
        rand_field(f[2], sizeof f[2], 1, 28, 75);
        rand_field(f[3], sizeof f[3], 1, 12, 80);
        rand_field(f[4], sizeof f[4], 0, 7, 70);
        snprintf(expr, sizeof expr, "%s %s %s %s %s", f[0], f[1], f[2], f[3], f[4]);
        struct fl_schedule s;
        memset(&s, 0, sizeof s);
        s.kind = FL_SCHED_CRON;
        char err[256];
        size_t col;
        if (fl_cron_parse(expr, &s.cron, &col, err, sizeof err) < 0)
            fail_msg("generated '%s' refused: %s", expr, err);
        const struct fl_tz *z = &tz[rnd(4)];
        int64_t after = utc(around[rnd(8)]) + (int64_t)rnd(6 * 3600) - 3 * 3600 + rnd(60);
        int64_t n1, n2;
        assert_int_equal(fl_schedule_next(&s, z, 0, after, &n1), 0);
        assert_int_equal(fl_schedule_next(&s, z, 0, n1, &n2), 0);
        if (!(n1 > after && n2 > n1))
            fail_msg("'%s' in %s: after %lld next %lld next2 %lld", expr, z->name, (long long)after,
                     (long long)n1, (long long)n2);
        if (!due_at(&s, z, n1) || !due_at(&s, z, n2))
            fail_msg("'%s' in %s: %lld or %lld is not a due time", expr, z->name, (long long)n1,
                     (long long)n2);
        if (n1 - after <= 3 * 86400 && iter % 3 == 0) {
            walked++;
            for (int64_t u = (after / 60 + 1) * 60; u < n1; u += 60)
                if (due_at(&s, z, u))
                    fail_msg("'%s' in %s: %lld is due, between after %lld and next %lld", expr,
                             z->name, (long long)u, (long long)after, (long long)n1);
        }
    }
    assert_true(walked > 100);
    for (int i = 0; i < 4; i++)
        fl_tz_free(&tz[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc_helper),    cmocka_unit_test(test_tz_offsets),
        cmocka_unit_test(test_tz_names),      cmocka_unit_test(test_tzif_damaged),
        cmocka_unit_test(test_known_answers), cmocka_unit_test(test_every),
        cmocka_unit_test(test_window),        cmocka_unit_test(test_window_property),
        cmocka_unit_test(test_start_at),      cmocka_unit_test(test_missed),
        cmocka_unit_test(test_jitter),        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_errors),  cmocka_unit_test(test_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
