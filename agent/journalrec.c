#include "agent/journalrec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cryptolib.h"

#define MAGIC "J2 "
#define MAGIC_LEN 3
#define SUM_HEX 16

static int sum_hex(const char *json, size_t len, char out[SUM_HEX + 1])
{
    const struct fl_cryptolib *c = fl_cryptolib();
    if (c == NULL)
        return -ELIBACC; /* logged, naming the library */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (c->digest(json, len, md, &mdlen, c->sha256(), NULL) != 1 || mdlen < SUM_HEX / 2)
        return -EIO;
    for (int i = 0; i < SUM_HEX / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

char *fl_journalrec_encode(const json_t *record, size_t *len, int *status)
{
    char *json = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
    if (json == NULL) {
        *status = -ENOMEM;
        return NULL;
    }
    size_t jlen = strlen(json);
    if (jlen > FL_JOURNAL_RECORD_MAX) {
        free(json);
        *status = -E2BIG;
        return NULL;
    }
    char sum[SUM_HEX + 1];
    int src = sum_hex(json, jlen, sum);
    if (src < 0) {
        free(json);
        *status = src;
        return NULL;
    }
    size_t cap = jlen + 64;
    char *line = malloc(cap);
    if (line == NULL) {
        free(json);
        *status = -ENOMEM;
        return NULL;
    }
    int n = snprintf(line, cap, MAGIC "%zu %s %s\n", jlen, sum, json);
    free(json);
    if (n < 0 || (size_t)n >= cap) {
        free(line);
        *status = -EIO;
        return NULL;
    }
    *len = (size_t)n;
    *status = 0;
    return line;
}

/* A framed record starting at p (at most n bytes, the rest of the line):
 * its length in bytes when it is whole and it ends exactly at p + n, else 0. */
static size_t framed_at(const char *p, size_t n, json_t **out)
{
    *out = NULL;
    if (n < MAGIC_LEN || memcmp(p, MAGIC, MAGIC_LEN) != 0)
        return 0;
    size_t i = MAGIC_LEN, jlen = 0, digits = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9' && digits < 7) {
        jlen = jlen * 10 + (size_t)(p[i] - '0');
        i++;
        digits++;
    }
    if (digits == 0 || jlen > FL_JOURNAL_RECORD_MAX || i >= n || p[i] != ' ')
        return 0;
    i++;
    if (n - i < SUM_HEX + 1 || p[i + SUM_HEX] != ' ')
        return 0;
    const char *sum = p + i;
    i += SUM_HEX + 1;
    if (n - i != jlen)
        return 0;
    char want[SUM_HEX + 1];
    if (sum_hex(p + i, jlen, want) < 0 || memcmp(want, sum, SUM_HEX) != 0)
        return 0;
    json_t *rec = json_loadb(p + i, jlen, 0, NULL);
    if (!json_is_object(rec)) {
        json_decref(rec);
        return 0;
    }
    *out = rec;
    return n;
}

/* A version 1 record (a bare JSON object) filling p[0..n) exactly. */
static size_t legacy_at(const char *p, size_t n, json_t **out)
{
    *out = NULL;
    if (n < 2 || p[0] != '{' || n > FL_JOURNAL_RECORD_MAX)
        return 0;
    json_t *rec = json_loadb(p, n, 0, NULL);
    if (!json_is_object(rec) || json_object_get(rec, "op") == NULL) {
        json_decref(rec);
        return 0;
    }
    *out = rec;
    return n;
}

size_t fl_journalrec_scan(const char *line, size_t n, void (*found)(json_t *record, void *arg),
                          void *arg)
{
    /* Records end at the end of the line: damage can only come before the
     * last record (a torn write, then a whole one appended after it). So try
     * the whole line, then each later place a record could start. The first
     * byte says which version wrote the line (a torn record keeps its first
     * byte): a framed line is never read as a bare one, so a record whose
     * sum does not match is never taken for a version 1 record inside it. */
    bool legacy = n > 0 && line[0] == '{';
    for (size_t at = 0; at < n; at++) {
        if (line[at] != (legacy ? '{' : 'J'))
            continue;
        json_t *rec = NULL;
        if (legacy)
            legacy_at(line + at, n - at, &rec);
        else
            framed_at(line + at, n - at, &rec);
        if (rec != NULL) {
            if (found != NULL)
                found(rec, arg);
            json_decref(rec);
            return at;
        }
    }
    return n;
}
