/* The scheduled experiments of a directory (catalog.h). */
#include "controller/serve/catalog.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int hash_file(const char *path, char hex[65])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -errno;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
    unsigned char buf[8192];
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        if (EVP_DigestUpdate(ctx, buf, n) != 1)
            rc = -EIO;
    if (rc == 0 && ferror(f))
        rc = -EIO;
    unsigned char md[32];
    unsigned len = 0;
    if (rc == 0 && (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 32))
        rc = -EIO;
    for (unsigned i = 0; rc == 0 && i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    return rc;
}

static bool is_yaml(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && ((n > 5 && strcmp(name + n - 5, ".yaml") == 0) ||
                              (n > 4 && strcmp(name + n - 4, ".yml") == 0));
}

static int note_invalid(struct fl_catalog *c, const char *path)
{
    char **grown = realloc(c->invalid, (c->n_invalid + 1) * sizeof(*grown));
    if (grown == NULL)
        return -ENOMEM;
    c->invalid = grown;
    if ((grown[c->n_invalid] = strdup(path)) == NULL)
        return -ENOMEM;
    c->n_invalid++;
    return 0;
}

static int load(const char *dir, const char *inventory, bool reload, struct fl_catalog *out,
                char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    DIR *d = opendir(dir);
    if (d == NULL) {
        int e = errno;
        snprintf(err, errlen, "experiments: cannot read the directory %s: %s", dir, strerror(e));
        return -e;
    }
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!is_yaml(de->d_name))
            continue;
        if (n == FL_SERVE_MAX_EXPERIMENTS) {
            snprintf(err, errlen,
                     "experiments: %s holds more than %d YAML files "
                     "(FL_SERVE_MAX_EXPERIMENTS); split it over several servers",
                     dir, FL_SERVE_MAX_EXPERIMENTS);
            rc = -E2BIG;
            break;
        }
        char **grown = realloc(names, (n + 1) * sizeof(*names));
        if (grown == NULL || (grown[n] = strdup(de->d_name)) == NULL) {
            names = grown ? grown : names;
            rc = -ENOMEM;
            snprintf(err, errlen, "out of memory");
            break;
        }
        names = grown;
        n++;
    }
    closedir(d);
    if (rc == 0 && n > 0)
        qsort(names, n, sizeof(*names), cmp_names);
    if (rc == 0 && (out->entries = calloc(n ? n : 1, sizeof(*out->entries))) == NULL) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[4096], why[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        struct fl_experiment *e = NULL;
        int lrc = fl_experiment_load(path, inventory, &e, why, sizeof(why));
        if (lrc < 0) {
            fl_error("%s (%s)", why,
                     reload ? "its previous version, if any, keeps its schedule" : "not scheduled");
            if (note_invalid(out, path) < 0) {
                rc = -ENOMEM;
                snprintf(err, errlen, "out of memory");
                break;
            }
            continue;
        }
        if (e->schedule == NULL) {
            if (!reload)
                fl_info("%s: no schedule: block, not scheduled", path);
            out->n_unscheduled++;
            fl_experiment_free(&e);
            continue;
        }
        for (size_t j = 0; j < out->n; j++) {
            if (strcmp(out->entries[j].e->name, e->name) == 0) {
                snprintf(err, errlen,
                         "%s and %s both name their experiment '%s': history is kept by name, "
                         "so names must differ",
                         out->entries[j].e->path, path, e->name);
                rc = -EINVAL;
            }
        }
        struct fl_catalog_entry *x = &out->entries[out->n];
        int hrc = rc == 0 ? hash_file(path, x->hash) : 0;
        if (hrc < 0) {
            snprintf(err, errlen, "%s: cannot read it again to hash it: %s", path, strerror(-hrc));
            rc = hrc;
        }
        if (rc < 0) {
            fl_experiment_free(&e);
            break;
        }
        x->e = e;
        out->n++;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc < 0)
        fl_catalog_free(out);
    return rc;
}

int fl_catalog_load(const char *dir, const char *inventory, struct fl_catalog *out, char *err,
                    size_t errlen)
{
    return load(dir, inventory, false, out, err, errlen);
}

int fl_catalog_reload(const char *dir, const char *inventory, struct fl_catalog *out, char *err,
                      size_t errlen)
{
    return load(dir, inventory, true, out, err, errlen);
}

void fl_catalog_free(struct fl_catalog *c)
{
    for (size_t i = 0; i < c->n; i++)
        fl_experiment_free(&c->entries[i].e);
    for (size_t i = 0; i < c->n_invalid; i++)
        free(c->invalid[i]);
    free(c->invalid);
    free(c->entries);
    memset(c, 0, sizeof(*c));
}
