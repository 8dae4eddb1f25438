/* faultline deploy against a real sshd on loopback. Two "hosts" are two
 * inventory entries on 127.0.0.1 with their own agent ports and deploy
 * directories. Deploy installs and starts both agents, which then answer
 * `faultline agents`; a second deploy changes nothing (same agent PIDs); a
 * changed binary is upgraded; uninstall leaves no file, directory or
 * process behind. A wrong user key, an unknown host key, a changed host key
 * and a closed port each fail their host with a clear line while the other
 * host succeeds, and the exit code says so. */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/support/proc.h"
#include "tests/support/sshd.h"

static struct test_sshd sshd;
static char key_path[400], inventory[400], wrong_key[400], empty_kh[400], changed_kh[400];
static char dir1[400], dir2[400];
static uint16_t port1, port2;
static char out[16384];

static char *arg(const char *a)
{
    return (char *)(uintptr_t)a;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f);
}

/* The two good hosts, plus extra host entries (YAML lines) when given. */
static void write_inventory(const char *extra)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "key_file: %s\n"
             "ssh: { user: root, port: %u, identity_file: %s, known_hosts: %s }\n"
             "hosts:\n"
             "  h1: { address: 127.0.0.1, port: %u, ssh: { deploy_dir: %s } }\n"
             "  h2: { address: 127.0.0.1, port: %u, ssh: { deploy_dir: %s } }\n"
             "%s",
             key_path, (unsigned)sshd.port, sshd.user_key, sshd.known_hosts, (unsigned)port1, dir1,
             (unsigned)port2, dir2, extra ? extra : "");
    assert_int_equal(write_text(inventory, text), 0);
}

static int deploy(const char *a1, const char *a2)
{
    char *argv[] = {arg(FL_CTL_BIN), arg("deploy"),    arg("--inventory"),
                    inventory,       arg("--timeout"), arg("10s"),
                    arg(a1),         arg(a2),          NULL};
    int rc = proc_run(argv, out, sizeof(out), 120000);
    fprintf(stderr, "--- deploy %s %s -> %d\n%s", a1 ? a1 : "", a2 ? a2 : "", rc, out);
    return rc;
}

static int agents_answer(void)
{
    char buf[4096];
    char *argv[] = {arg(FL_CTL_BIN), arg("agents"), arg("--inventory"), inventory, arg("--key"),
                    key_path,        NULL};
    int rc = proc_run(argv, buf, sizeof(buf), 30000);
    if (rc != 0)
        fprintf(stderr, "agents -> %d\n%s", rc, buf);
    return rc;
}

static long read_pid(const char *dir, const char *name)
{
    char path[600], buf[32] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    return strtol(buf, NULL, 10);
}

/* Is there a process whose command line mentions dir (not a zombie)? */
static bool process_mentions(const char *dir)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;
    while (d != NULL && !found && (e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        char path[64], cmd[4096];
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
        fclose(f);
        for (size_t i = 0; i < n; i++)
            if (cmd[i] == '\0')
                cmd[i] = ' ';
        cmd[n] = '\0';
        if (strstr(cmd, dir) != NULL && proc_state_of((pid_t)pid) != 'Z') {
            fprintf(stderr, "left behind: pid %ld: %s\n", pid, cmd);
            found = true;
        }
    }
    if (d)
        closedir(d);
    return found;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (test_sshd_start(&sshd) < 0)
        return -1;
    snprintf(key_path, sizeof(key_path), "%s/faultline.key", sshd.dir);
    snprintf(inventory, sizeof(inventory), "%s/hosts.yaml", sshd.dir);
    snprintf(wrong_key, sizeof(wrong_key), "%s/wrong_ed25519", sshd.dir);
    snprintf(empty_kh, sizeof(empty_kh), "%s/empty_known_hosts", sshd.dir);
    snprintf(changed_kh, sizeof(changed_kh), "%s/changed_known_hosts", sshd.dir);
    snprintf(dir1, sizeof(dir1), "%s/remote1/faultline", sshd.dir);
    snprintf(dir2, sizeof(dir2), "%s/remote2/faultline", sshd.dir);
    port1 = test_free_port();
    do
        port2 = test_free_port();
    while (port2 == port1);
    char kg_out[512];
    char *kg[] = {arg(FL_CTL_BIN), arg("keygen"), key_path, NULL};
    if (proc_run(kg, kg_out, sizeof(kg_out), 5000) != 0)
        return -1;
    /* a key sshd does not authorize, and a host key that is not sshd's */
    char *wk[] = {arg("/usr/bin/ssh-keygen"),
                  arg("-q"),
                  arg("-t"),
                  arg("ed25519"),
                  arg("-N"),
                  arg(""),
                  arg("-f"),
                  wrong_key,
                  NULL};
    if (proc_run(wk, kg_out, sizeof(kg_out), 10000) != 0)
        return -1;
    char pub[600], line[800];
    snprintf(pub, sizeof(pub), "%s.pub", wrong_key);
    FILE *f = fopen(pub, "r");
    if (f == NULL || fgets(line, sizeof(line), f) == NULL)
        return -1;
    fclose(f);
    char *sp = strchr(line, ' ');
    sp = sp ? strchr(sp + 1, ' ') : NULL;
    if (sp)
        *sp = '\0';
    char text[1024];
    snprintf(text, sizeof(text), "[127.0.0.1]:%u %s\n", (unsigned)sshd.port, line);
    if (write_text(changed_kh, text) != 0 || write_text(empty_kh, "") != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    write_inventory(NULL);
    deploy("--uninstall", NULL); /* whatever a failed test left running */
    test_sshd_stop(&sshd);
    return 0;
}

static void installs_redeploys_upgrades_uninstalls(void **state)
{
    (void)state;
    write_inventory(NULL);
    assert_int_equal(deploy(NULL, NULL), 0);
    assert_non_null(strstr(out, "h1  installed"));
    assert_non_null(strstr(out, "h2  installed"));
    assert_non_null(strstr(out, "2 hosts in"));
    assert_int_equal(agents_answer(), 0);
    char key_file[600];
    snprintf(key_file, sizeof(key_file), "%s/faultline.key", dir1);
    struct stat st;
    assert_int_equal(stat(key_file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    long a1 = read_pid(dir1, "agent.pid"), a2 = read_pid(dir2, "agent.pid");
    assert_true(a1 > 0 && a2 > 0);

    /* again: nothing to do, nothing restarted */
    assert_int_equal(deploy(NULL, NULL), 0);
    assert_non_null(strstr(out, "h1  unchanged"));
    assert_non_null(strstr(out, "h2  unchanged"));
    assert_int_equal(read_pid(dir1, "agent.pid"), a1);
    assert_int_equal(read_pid(dir2, "agent.pid"), a2);

    /* a different binary: upgraded, restarted, answering */
    char changed[600], cmd_out[256];
    snprintf(changed, sizeof(changed), "%s/faultline-agent-changed", sshd.dir);
    char *cp[] = {arg("/bin/cp"), arg(FL_AGENT_BIN), changed, NULL};
    assert_int_equal(proc_run(cp, cmd_out, sizeof(cmd_out), 10000), 0);
    FILE *f = fopen(changed, "a");
    assert_non_null(f);
    fputc(0, f);
    fclose(f);
    assert_int_equal(deploy("--agent-binary", changed), 0);
    assert_non_null(strstr(out, "h1  upgraded"));
    assert_non_null(strstr(out, "h2  upgraded"));
    assert_int_not_equal(read_pid(dir1, "agent.pid"), a1);
    assert_int_equal(agents_answer(), 0);

    /* the agent dies: the supervisor brings it back */
    long before = read_pid(dir1, "agent.pid");
    kill((pid_t)before, SIGKILL);
    long after = before;
    for (int i = 0; i < 100 && (after == before || after <= 0); i++) {
        sleep_ms(50);
        after = read_pid(dir1, "agent.pid");
    }
    assert_true(after > 0 && after != before);

    /* uninstall: nothing left */
    assert_int_equal(deploy("--uninstall", NULL), 0);
    assert_non_null(strstr(out, "h1  removed"));
    assert_non_null(strstr(out, "h2  removed"));
    assert_false(exists(dir1));
    assert_false(exists(dir2));
    assert_false(process_mentions(dir1));
    assert_false(process_mentions(dir2));
    assert_int_not_equal(agents_answer(), 0);
    assert_int_equal(deploy("--uninstall", NULL), 0);
    assert_non_null(strstr(out, "h1  not installed"));
}

static void one_bad_host_does_not_stop_the_others(void **state)
{
    (void)state;
    char extra[4096];
    uint16_t closed = test_free_port();
    snprintf(extra, sizeof(extra),
             "  wrongkey: { address: 127.0.0.1, port: %u, ssh: { identity_file: %s, "
             "deploy_dir: %s/r3 } }\n"
             "  newhost: { address: 127.0.0.1, port: %u, ssh: { known_hosts: %s, "
             "deploy_dir: %s/r4 } }\n"
             "  changed: { address: 127.0.0.1, port: %u, ssh: { known_hosts: %s, "
             "deploy_dir: %s/r5 } }\n"
             "  closed: { address: 127.0.0.1, port: %u, ssh: { port: %u, deploy_dir: %s/r6 } }\n",
             (unsigned)test_free_port(), wrong_key, sshd.dir, (unsigned)test_free_port(), empty_kh,
             sshd.dir, (unsigned)test_free_port(), changed_kh, sshd.dir, (unsigned)test_free_port(),
             (unsigned)closed, sshd.dir);
    write_inventory(extra);
    assert_int_equal(deploy(NULL, NULL), 2);
    assert_non_null(strstr(out, "h1        installed"));
    assert_non_null(strstr(out, "h2        installed"));
    assert_non_null(strstr(out, "wrongkey  FAILED: "));
    assert_non_null(strstr(out, "user root was refused with the key"));
    assert_non_null(strstr(out, "newhost   FAILED: host key for newhost"));
    assert_non_null(strstr(out, "is not in known_hosts"));
    assert_non_null(strstr(out, "--accept-new-host-keys"));
    assert_non_null(strstr(out, "changed   FAILED: host key for changed"));
    assert_non_null(strstr(out, "has CHANGED"));
    assert_non_null(strstr(out, "closed    FAILED: "));
    assert_non_null(strstr(out, "connection refused"));
    assert_non_null(strstr(out, "2 installed, 4 failed"));

    /* the flag adds the new host's key, and never replaces a changed one */
    assert_int_equal(deploy("--accept-new-host-keys", NULL), 2);
    assert_non_null(strstr(out, "newhost   installed"));
    assert_non_null(strstr(out, "changed   FAILED: host key for changed"));
    assert_non_null(strstr(out, "h1        unchanged"));
    char buf[2048];
    assert_non_null(file_wait_for(empty_kh, "ssh-ed25519 ", buf, sizeof(buf), 100));
    /* now known: without the flag too */
    assert_int_equal(deploy(NULL, NULL), 2);
    assert_non_null(strstr(out, "newhost   unchanged"));

    assert_int_equal(deploy("--uninstall", NULL), 2);
    assert_non_null(strstr(out, "newhost   removed"));
    assert_non_null(strstr(out, "h1        removed"));
    char r4[600];
    snprintf(r4, sizeof(r4), "%s/r4", sshd.dir);
    assert_false(exists(r4));
    assert_false(process_mentions(r4));
}

static bool file_has(const char *path, const char *needle)
{
    char buf[8192];
    return file_wait_for(path, needle, buf, sizeof(buf), 0) != NULL;
}

/* deploy_dir must name one directory plainly; one directory, one host. */
static void refuses_bad_and_shared_deploy_dirs(void **state)
{
    (void)state;
    char extra[2048];
    snprintf(extra, sizeof(extra),
             "  slash: { address: 127.0.0.1, port: %u, ssh: { deploy_dir: / } }\n"
             "  dots: { address: 127.0.0.1, port: %u, ssh: { deploy_dir: %s/x/../y } }\n"
             "  dot: { address: 127.0.0.1, port: %u, ssh: { deploy_dir: %s/./y } }\n",
             (unsigned)test_free_port(), (unsigned)test_free_port(), sshd.dir,
             (unsigned)test_free_port(), sshd.dir);
    write_inventory(extra);
    assert_int_equal(deploy(NULL, NULL), 2);
    assert_non_null(strstr(out, "slash  FAILED: deploy_dir '/' must be"));
    assert_non_null(strstr(out, "dots   FAILED: deploy_dir"));
    assert_non_null(strstr(out, "dot    FAILED: deploy_dir"));
    assert_non_null(strstr(out, "2 installed, 3 failed"));
    assert_int_equal(deploy("--uninstall", NULL), 2);
    assert_non_null(strstr(out, "h1     removed"));

    /* the same directory on the same machine, twice (a trailing slash aside) */
    snprintf(extra, sizeof(extra),
             "  again: { address: 127.0.0.1, port: %u, ssh: { deploy_dir: %s/ } }\n",
             (unsigned)test_free_port(), dir1);
    write_inventory(extra);
    assert_int_equal(deploy(NULL, NULL), 2);
    assert_non_null(strstr(out, "hosts h1 and again both deploy to 127.0.0.1"));
    assert_false(exists(dir1)); /* nothing ran */

    /* usage: an option without its value */
    char *argv[] = {arg(FL_CTL_BIN), arg("deploy"), arg("--inventory"), NULL};
    assert_int_equal(proc_run(argv, out, sizeof(out), 10000), 64);
    assert_non_null(strstr(out, "--inventory needs a FILE"));
}

/* A directory that was there before: its mode stays, its other files stay,
 * and uninstall takes away only what the marker lists. A directory without
 * the marker is not touched at all. */
static void only_what_deploy_created(void **state)
{
    (void)state;
    char pre[600], mine[700], marker[700], agent[700], bin[700];
    snprintf(pre, sizeof(pre), "%s/pre", sshd.dir);
    snprintf(mine, sizeof(mine), "%s/mine.txt", pre);
    snprintf(marker, sizeof(marker), "%s/.faultline-deploy", pre);
    snprintf(agent, sizeof(agent), "%s/bin/faultline-agent", pre);
    snprintf(bin, sizeof(bin), "%s/bin", pre);
    assert_int_equal(mkdir(pre, 0711), 0);
    assert_int_equal(chmod(pre, 0711), 0);
    assert_int_equal(write_text(mine, "not deploy's\n"), 0);
    char extra[1024];
    snprintf(extra, sizeof(extra),
             "  pre: { address: 127.0.0.1, port: %u, ssh: { deploy_dir: %s } }\n",
             (unsigned)test_free_port(), pre);
    write_inventory(extra);
    assert_int_equal(deploy(NULL, NULL), 0);
    assert_non_null(strstr(out, "pre  installed"));
    struct stat st;
    assert_int_equal(stat(pre, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0711); /* not chmodded */
    assert_true(file_has(marker, "dir bin"));
    assert_true(file_has(marker, "dir state"));
    assert_false(file_has(marker, "dir .\n"));
    assert_true(file_has(marker, "file faultline.key"));

    assert_int_equal(deploy("--uninstall", NULL), 0);
    assert_non_null(strstr(out, "pre  removed"));
    assert_true(exists(pre));
    assert_true(exists(mine));
    assert_false(exists(marker));
    assert_false(exists(agent));
    assert_false(exists(bin));
    assert_false(process_mentions(pre));

    /* no marker: uninstall refuses, and touches nothing */
    assert_int_equal(mkdir(bin, 0755), 0);
    assert_int_equal(write_text(agent, "someone else's\n"), 0);
    assert_int_equal(deploy("--uninstall", NULL), 2);
    assert_non_null(strstr(out, "pre  FAILED: "));
    assert_non_null(strstr(out, "has no .faultline-deploy file"));
    assert_true(exists(agent));
    assert_true(exists(mine));
    test_rm_rf(pre);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(installs_redeploys_upgrades_uninstalls),
        cmocka_unit_test(one_bad_host_does_not_stop_the_others),
        cmocka_unit_test(refuses_bad_and_shared_deploy_dirs),
        cmocka_unit_test(only_what_deploy_created),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
