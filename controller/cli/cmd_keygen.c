/* faultline keygen [--force] [FILE] */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "controller/cli/cli.h"

static const char keygen_help[] =
    "usage: faultline keygen [--force] [FILE]\n"
    "\n"
    "Writes a new random pre-shared key (32 bytes as 64 hex digits) to FILE\n"
    "(default faultline.key) with mode 0600. The controller and every agent\n"
    "need the same key. An existing file is kept unless --force is given.\n";

int fl_cmd_keygen(int argc, char **argv)
{
    static const struct option options[] = {
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool force = false;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "fh", options, NULL)) != -1) {
        switch (opt) {
        case 'f':
            force = true;
            break;
        case 'h':
            fputs(keygen_help, stdout);
            return 0;
        default:
            return fl_cli_usage_error("keygen", "unknown option");
        }
    }
    if (argc - optind > 1)
        return fl_cli_usage_error("keygen", "takes one FILE at most");
    const char *path = optind < argc ? argv[optind] : "faultline.key";

    struct fl_key key;
    char err[512];
    if (fl_key_generate(&key) < 0) {
        fprintf(stderr, "faultline keygen: no random bytes from OpenSSL\n");
        return FL_EXIT_ERROR;
    }
    int rc = fl_key_write(path, &key, force, err, sizeof(err));
    fl_key_wipe(&key);
    if (rc < 0) {
        fprintf(stderr, "faultline keygen: %s\n", err);
        return FL_EXIT_ERROR;
    }
    printf("wrote %s (mode 0600): copy it to every agent host, and keep it secret\n", path);
    return 0;
}
