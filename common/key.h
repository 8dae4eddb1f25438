/* The pre-shared key: 32 random bytes, stored as 64 hex digits in a file that
 * only its owner may read (mode 0600). */
#ifndef FL_COMMON_KEY_H
#define FL_COMMON_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_KEY_LEN 32

struct fl_key {
    uint8_t bytes[FL_KEY_LEN];
};

/* Loads a key file. Refuses a file that is not a regular file (a FIFO too,
 * at once, without waiting for a writer), that group or
 * others may access, or whose contents are not 64 hex digits (surrounding
 * white space allowed). On failure, err says why in words a person can act
 * on, and *key is untouched. Returns 0 or a negative errno. */
int fl_key_load(const char *path, struct fl_key *key, char *err, size_t errlen);

/* Looks at a key file by name without opening it (stat, which follows
 * symbolic links): 0 for a regular file; -EISDIR or -EINVAL for anything
 * else, with err "key file PATH is a FIFO, not a regular file"; -errno when it
 * cannot be looked at (-ENOENT: missing), err saying so. For loaders that name
 * a key file long before it is read. */
int fl_key_check_path(const char *path, char *err, size_t errlen);

/* Fills *key with random bytes from OpenSSL's CSPRNG. */
int fl_key_generate(struct fl_key *key);

/* Writes a key file with mode 0600, created exclusively unless overwrite is
 * set, and fsynced. Returns 0 or a negative errno with err filled. */
int fl_key_write(const char *path, const struct fl_key *key, bool overwrite, char *err,
                 size_t errlen);

/* Erases key material in a way the compiler cannot optimise away. */
void fl_key_wipe(struct fl_key *key);

#endif
