/* network_drop: packet loss through nftables rules, set through libnftables.
 *
 * Everything lives in the agent's own table (agent/faults/network.h: `inet
 * faultline` for the default state directory, `inet faultline_<hash>` for
 * any other), in two base chains at priority -10 (just before the usual
 * filter chains), policy accept:
 *
 *   table inet faultline {
 *     chain input {   type filter hook input priority -10; policy accept;
 *       icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept comment "faultline:ndp"
 *       tcp dport 7411 accept comment "faultline:control tcp dport 7411"
 *       iif lo tcp sport 7411 accept comment "faultline:control iif lo tcp sport 7411"
 *       ip saddr { 10.0.0.0/8 } tcp dport { 80, 443 } numgen random mod 100 < 50 drop
 *           comment "faultline:f-0123456789abcdef"
 *       ip saddr { 10.0.0.0/8 } tcp sport { 80, 443 } tcp dport != { 80, 443 }
 *           numgen random mod 100 < 50 drop comment "faultline:f-0123456789abcdef"
 *     }
 *     chain output {  type filter hook output priority -10; policy accept;
 *       icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept comment "faultline:ndp"
 *       tcp sport 7411 accept comment "faultline:control tcp sport 7411"
 *       oif lo tcp dport 7411 accept comment "faultline:control oif lo tcp dport 7411"
 *       ...
 *     }
 *   }
 *
 * - The control exemption comes first in each chain, so that no fault cuts the
 *   agent's own channel with its controller (a cut channel would trip the
 *   lease and revert the fault). It is the agent's connections only, by their
 *   local end (agent/faults/netplan.h says why each rule is there): traffic
 *   from a remote port 7411, or to one, is not exempt. Each exemption's
 *   comment names it exactly; the wide exemption of earlier agents ("tcp
 *   dport/sport 7411" in both chains, comment "faultline:control" alone) is
 *   replaced when a fault is applied to a table that still has it.
 * - IPv6 neighbour discovery is exempt too: it is IPv6's ARP (which the inet
 *   family never sees), and without it a drop-everything fault would cut an
 *   IPv6 control channel as soon as the neighbour entry went stale. An accept
 *   here only ends our chain: the host's own chains still decide about every
 *   packet as before.
 * - Ingress rules sit in input and match the peer as source; egress rules sit
 *   in output and match it as destination. IPv4 and IPv6 peers get a rule
 *   each; no peers means every peer.
 * - Ports match the source OR the destination port: one rule for "dport in
 *   set", one for "sport in set and dport not in set", so that no packet is
 *   tested twice (which would skew a percentage). With protocol all, ports
 *   mean tcp and udp.
 * - reject answers tcp with a reset and anything else with inet's icmpx
 *   port-unreachable; protocol all with reject is one tcp rule and one "not
 *   tcp" rule. A percentage is `numgen random mod 100 < N`, one roll per
 *   packet.
 * - Every rule of a fault carries comment "faultline:<fault id>".
 *
 * Security: nothing from the request is pasted into a command. prepare parses
 * every peer (common/cidr.h: inet_pton, prefix length, host bits refused;
 * duplicates and contained CIDRs dropped), port and enum, and writes the rule
 * text from the parsed values only (agent/faults/netplan.c, which holds the
 * plan and the rule text; this file holds the nftables I/O). That text goes into the undo object,
 * for people and for apply. revert takes nothing from the undo object but the fault id, checked to
 * be a plain id (common/faultid.h), and deletes by the handles the kernel lists.
 *
 * prepare runs on the loop and never calls nftables. apply and revert run in
 * the thread pool (or in the guardian, or at start): a static mutex serialises
 * them within the process, which also keeps libnftables (whose contexts share
 * global state) on one thread at a time. Each call opens its own context, in
 * the network namespace of the calling thread. libnftables itself is loaded
 * by the first nft_open (agent/faults/nftlib.h), never at start.
 *
 * apply lists the table (JSON, with handles) and, in one nft transaction,
 * creates whatever is missing -- table, chains, the exemption for this
 * agent's port -- and adds the fault's rules: all of it lands, or none.
 * revert lists the table and deletes the rules whose comment names the fault;
 * when no other rule but the exemptions would remain, it deletes the whole
 * table instead, so that `nft list ruleset` reads exactly as before the first
 * fault. No table, or no rule of that fault, is success. */
#include "agent/faults/network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent/fault.h"
#include "agent/faults/netplan.h"
#include "agent/faults/nftlib.h"
#include "common/faultid.h"

#define COMMENT_PREFIX FL_NETPLAN_COMMENT_PREFIX
#define CONTROL_COMMENT FL_NETPLAN_CONTROL_COMMENT /* alone: the wide form of earlier agents */
#define NDP_COMMENT COMMENT_PREFIX "ndp"
#define CHAIN_PRIORITY (-10)

_Static_assert(sizeof(((struct fl_agent_ctx *)0)->nft_table) == FL_NETWORK_TABLE_MAX,
               "agent/fault.h's nft_table holds a table name");

static pthread_mutex_t nft_lock = PTHREAD_MUTEX_INITIALIZER;

/* ------------------------------------------------------------ nftables */

/* libnftables' functions (agent/faults/nftlib.h): set by the first
 * nft_open, under nft_lock, and never changed after */
static const struct fl_nftlib *nftl;

static int nft_open(struct nft_ctx **out, char *err, size_t errlen)
{
    if (nftl == NULL && (nftl = fl_nftlib_get(err, errlen)) == NULL)
        return -ELIBACC;
    struct nft_ctx *nft = nftl->ctx_new(NFT_CTX_DEFAULT);
    if (nft == NULL) {
        snprintf(err, errlen, "could not start libnftables: out of memory");
        return -ENOMEM;
    }
    if (nftl->ctx_buffer_output(nft) != 0 || nftl->ctx_buffer_error(nft) != 0) {
        nftl->ctx_free(nft);
        snprintf(err, errlen, "could not start libnftables: out of memory");
        return -ENOMEM;
    }
    *out = nft;
    return 0;
}

/* A context's end. libnftables allocates and frees a few hundred KiB per
 * command (its caches, the JSON listing); malloc keeps what was freed unless
 * told, and an agent that applied one fault would hold it for good: give it
 * back (bench/README.md, agent memory). */
static void nft_close(struct nft_ctx *nft)
{
    nftl->ctx_free(nft);
    malloc_trim(0);
}

/* nftables' own reason, one line: the "Error: ..." part of its message */
static void nft_reason(const char *msg, char *out, size_t cap)
{
    if (msg == NULL || *msg == '\0') {
        snprintf(out, cap, "nftables gave no reason");
        return;
    }
    const char *at = strstr(msg, "Error: ");
    at = at ? at + strlen("Error: ") : msg;
    size_t n = strcspn(at, "\n");
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)at[i] < 0x20 ? ' ' : at[i];
    out[n] = '\0';
}

static int nft_errno(const char *msg)
{
    if (msg == NULL)
        return -EIO;
    if (strstr(msg, "Operation not permitted") != NULL)
        return -EPERM;
    if (strstr(msg, "No such file or directory") != NULL)
        return -ENOENT;
    if (strstr(msg, "File exists") != NULL)
        return -EEXIST;
    if (strstr(msg, "not supported") != NULL)
        return -EOPNOTSUPP;
    return -EIO;
}

/* Runs cmd (one transaction). *output, when asked for, is valid until the
 * next command. On failure err reads "<what>: <nftables' reason><hint>". */
static int nft_exec(struct nft_ctx *nft, const char *cmd, const char **output, const char *what,
                    char *err, size_t errlen)
{
    int rc = nftl->run_cmd_from_buffer(nft, cmd);
    const char *out = nftl->ctx_get_output_buffer(nft);
    const char *msg = nftl->ctx_get_error_buffer(nft);
    if (rc == 0) {
        if (output != NULL)
            *output = out ? out : "";
        return 0;
    }
    char why[256];
    nft_reason(msg, why, sizeof(why));
    int e = nft_errno(msg);
    snprintf(err, errlen, "%s: %s%s", what, why,
             e == -EPERM ? " (the agent needs root or CAP_NET_ADMIN)"
             : e == -EOPNOTSUPP || e == -EIO
                 ? " (does this kernel have nf_tables, nft_reject_inet and nft_numgen?)"
                 : "");
    return e;
}

static bool json_str_is(const json_t *v, const char *s)
{
    const char *t = json_string_value(v);
    return t != NULL && strcmp(t, s) == 0;
}

/* 1 when `list tables inet` names table, 0 when not */
static int table_exists(struct nft_ctx *nft, const char *table, char *err, size_t errlen)
{
    const char *text = NULL;
    int rc =
        nft_exec(nft, "list tables inet", &text, "could not list the nftables tables", err, errlen);
    if (rc < 0)
        return rc;
    json_t *root = json_loads(text, 0, NULL);
    const json_t *items = json_object_get(root, "nftables");
    if (!json_is_array(items)) {
        json_decref(root);
        snprintf(err, errlen, "could not read nftables' list of tables (not JSON)");
        return -EIO;
    }
    size_t i;
    const json_t *it;
    int found = 0;
    json_array_foreach(items, i, it)
    {
        const json_t *t = json_object_get(it, "table");
        if (t != NULL && json_str_is(json_object_get(t, "family"), "inet") &&
            json_str_is(json_object_get(t, "name"), table))
            found = 1;
    }
    json_decref(root);
    return found;
}

/* Table listed as JSON with handles: *out is the whole listing, or NULL
 * when there is no such table. */
static int table_read(struct nft_ctx *nft, const char *table, json_t **out, char *err,
                      size_t errlen)
{
    nftl->ctx_output_set_flags(nft, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
    const char *text = NULL;
    char first[384], cmd[96], what[96];
    json_t *root = NULL;
    snprintf(cmd, sizeof(cmd), "list table inet %s", table);
    snprintf(what, sizeof(what), "could not list table inet %s", table);
    int rc = nft_exec(nft, cmd, &text, what, first, sizeof(first));
    if (rc == 0) {
        json_error_t jerr;
        root = json_loads(text, 0, &jerr);
        if (!json_is_array(json_object_get(root, "nftables"))) {
            snprintf(err, errlen, "could not read nftables' listing of table inet %s: %s", table,
                     root ? "no nftables array" : jerr.text);
            rc = -EIO;
        }
    } else {
        int exists = table_exists(nft, table, err, errlen);
        if (exists == 0)
            rc = 0; /* simply not there */
        else if (exists > 0)
            snprintf(err, errlen, "%s", first);
        else
            rc = exists;
    }
    nftl->ctx_output_set_flags(nft, 0);
    if (rc < 0) {
        json_decref(root);
        return rc;
    }
    *out = root;
    return 0;
}

/* The rule objects of table, one by one: returns the next after *i. */
static const json_t *next_rule(const json_t *listing, const char *table, size_t *i)
{
    const json_t *items = json_object_get(listing, "nftables");
    for (; *i < json_array_size(items); (*i)++) {
        const json_t *r = json_object_get(json_array_get(items, *i), "rule");
        if (r != NULL && json_str_is(json_object_get(r, "family"), "inet") &&
            json_str_is(json_object_get(r, "table"), table)) {
            (*i)++;
            return r;
        }
    }
    return NULL;
}

static bool table_has_chain(const json_t *listing, const char *table, const char *name)
{
    const json_t *items = json_object_get(listing, "nftables");
    size_t i;
    const json_t *it;
    json_array_foreach(items, i, it)
    {
        const json_t *c = json_object_get(it, "chain");
        if (c != NULL && json_str_is(json_object_get(c, "family"), "inet") &&
            json_str_is(json_object_get(c, "table"), table) &&
            json_str_is(json_object_get(c, "name"), name))
            return true;
    }
    return false;
}

/* Has chain a rule with exactly this comment? */
static bool table_has_comment(const json_t *listing, const char *table, int chain,
                              const char *comment)
{
    size_t i = 0;
    const json_t *r;
    while ((r = next_rule(listing, table, &i)) != NULL) {
        if (json_str_is(json_object_get(r, "chain"), fl_netplan_chains[chain]) &&
            json_str_is(json_object_get(r, "comment"), comment))
            return true;
    }
    return false;
}

/* the exemptions every chain starts with: no fault's rules */
static bool is_exemption_rule(const json_t *rule)
{
    const char *comment = json_string_value(json_object_get(rule, "comment"));
    size_t n = strlen(CONTROL_COMMENT);
    return comment != NULL &&
           (strcmp(comment, NDP_COMMENT) == 0 || (strncmp(comment, CONTROL_COMMENT, n) == 0 &&
                                                  (comment[n] == '\0' || comment[n] == ' ')));
}

static bool is_rule_of(const json_t *rule, const char *id)
{
    const char *comment = json_string_value(json_object_get(rule, "comment"));
    size_t n = strlen(COMMENT_PREFIX);
    return comment != NULL && strncmp(comment, COMMENT_PREFIX, n) == 0 &&
           strcmp(comment + n, id) == 0;
}

/* Table, chains and exemptions: whatever of them the listing lacks. The wide
 * exemption of earlier agents (comment exactly CONTROL_COMMENT) goes: it let
 * through anything with the control port on either side. Another agent's
 * exemptions (another port) stay. */
static void add_setup(struct fl_sbuf *b, const char *table, const json_t *listing,
                      uint16_t control_port, const struct fl_cidr *control_addr)
{
    struct fl_netplan_exemption ex[FL_NETPLAN_MAX_EXEMPTIONS];
    /* control_addr NULL (an agent listening on every address): any local
     * address */
    int n_ex = control_port != 0 ? fl_netplan_exemptions(control_port, control_addr, ex) : 0;
    if (n_ex < 0)
        n_ex = 0;
    if (listing == NULL)
        fl_sbuf_add(b, "add table inet %s\n", table);
    size_t i = 0;
    const json_t *r;
    while (listing != NULL && (r = next_rule(listing, table, &i)) != NULL) {
        const json_t *chain = json_object_get(r, "chain");
        const json_t *handle = json_object_get(r, "handle");
        int c = json_str_is(chain, fl_netplan_chains[0])   ? 0
                : json_str_is(chain, fl_netplan_chains[1]) ? 1
                                                           : -1;
        if (c >= 0 && json_str_is(json_object_get(r, "comment"), CONTROL_COMMENT) &&
            json_is_integer(handle) && json_integer_value(handle) > 0)
            fl_sbuf_add(b, "delete rule inet %s %s handle %lld\n", table, fl_netplan_chains[c],
                        (long long)json_integer_value(handle));
    }
    for (int c = 0; c < 2; c++) {
        bool chain = listing != NULL && table_has_chain(listing, table, fl_netplan_chains[c]);
        if (!chain)
            fl_sbuf_add(
                b, "add chain inet %s %s { type filter hook %s priority %d; policy accept; }\n",
                table, fl_netplan_chains[c], fl_netplan_chains[c], CHAIN_PRIORITY);
        /* insert: first in a chain that already has rules */
        const char *verb = chain ? "insert" : "add";
        if (!chain || !table_has_comment(listing, table, c, NDP_COMMENT))
            fl_sbuf_add(b,
                        "%s rule inet %s %s icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert "
                        "} accept comment \"" NDP_COMMENT "\"\n",
                        verb, table, fl_netplan_chains[c]);
        for (int k = 0; k < n_ex; k++)
            if (ex[k].chain == c &&
                (!chain || !table_has_comment(listing, table, c, ex[k].comment)))
                fl_sbuf_add(b, "%s rule inet %s %s %s accept comment \"%s\"\n", verb, table,
                            fl_netplan_chains[c], ex[k].match, ex[k].comment);
    }
}

/* ------------------------------------------------------------ the kind */

static int network_prepare(struct fl_fault *f, const struct fl_agent_ctx *ctx, char *err,
                           size_t errlen)
{
    if (f->spec == NULL || f->spec->kind_case != FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP ||
        f->spec->network_drop == NULL) {
        snprintf(err, errlen, "the request holds no network_drop parameters");
        return -EINVAL;
    }
    if (!fl_fault_id_ok(f->id)) {
        snprintf(err, errlen, "fault id is not a plain id (letters, digits, '-' and '_')");
        return -EINVAL;
    }
    struct fl_netplan *p = malloc(sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = fl_netplan_parse(f->spec->network_drop, p, err, errlen);
    if (rc < 0) {
        free(p);
        return rc;
    }
    uint16_t port = ctx != NULL ? ctx->control_port : 0;
    json_t *rules = json_array();
    rc = rules ? fl_netplan_rules(p, f->id, rules) : -ENOMEM;
    char *detail = rc == 0 ? fl_netplan_detail(p, port) : NULL;
    free(p);
    if (rc == 0 && detail == NULL)
        rc = -ENOMEM;
    /* f->detail is a fixed buffer: a long detail is cut there, visibly */
    if (rc == 0 && strlen(detail) >= sizeof(f->detail))
        memcpy(detail + sizeof(f->detail) - 4, "...", 4);
    json_t *undo = NULL;
    if (rc == 0) {
        /* the agent's own table (absent from ctx outside an agent: the
         * default one) */
        const char *table =
            ctx != NULL && ctx->nft_table[0] != '\0' ? ctx->nft_table : FL_NETWORK_TABLE;
        undo = json_pack("{s:s,s:s,s:s,s:i,s:O,s:s}", "kind", "network_drop", "id", f->id, "table",
                         table, "control_port", (int)port, "rules", rules, "detail", detail);
        if (undo != NULL && ctx != NULL && ctx->control_addr[0] != '\0' &&
            json_object_set_new(undo, "control_addr", json_string(ctx->control_addr)) != 0) {
            json_decref(undo);
            undo = NULL;
        }
        if (undo == NULL)
            rc = -ENOMEM;
    }
    json_decref(rules);
    free(detail);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    json_decref(f->undo);
    f->undo = undo;
    return 0;
}

/* The table an undo record names: absent in records of agents before the
 * table was per agent (they all used FL_NETWORK_TABLE); NULL when what it
 * names is not one of ours. */
static const char *undo_table(const json_t *undo)
{
    const json_t *t = json_object_get(undo, "table");
    if (t == NULL)
        return FL_NETWORK_TABLE;
    const char *name = json_string_value(t);
    return fl_network_table_ok(name) ? name : NULL;
}

static int network_apply(struct fl_fault *f, char *err, size_t errlen)
{
    const char *table = undo_table(f->undo);
    const json_t *rules = json_object_get(f->undo, "rules");
    const json_t *jport = json_object_get(f->undo, "control_port");
    const char *id = json_string_value(json_object_get(f->undo, "id"));
    json_int_t port = json_integer_value(jport);
    /* the agent's own address when it listens on one (absent: any) */
    const json_t *jaddr = json_object_get(f->undo, "control_addr");
    struct fl_cidr addr;
    bool addr_ok = jaddr == NULL ||
                   (json_is_string(jaddr) && fl_cidr_parse(json_string_value(jaddr), &addr) == 0);
    bool ok = addr_ok && json_is_array(rules) && json_array_size(rules) > 0 &&
              json_array_size(rules) <= FL_NETPLAN_MAX_RULES && json_is_integer(jport) &&
              port >= 0 && port <= 65535 && fl_fault_id_ok(id) && strcmp(id, f->id) == 0 &&
              table != NULL;
    size_t i;
    const json_t *r;
    json_array_foreach(rules, i, r)
    {
        const char *t = json_string_value(r);
        /* made by prepare; checked anyway, as it will be one line of a batch */
        ok = ok && t != NULL && (strncmp(t, "input ", 6) == 0 || strncmp(t, "output ", 7) == 0) &&
             strpbrk(t, "\r\n;") == NULL;
    }
    if (!ok) {
        snprintf(err, errlen,
                 "network_drop fault %s was not prepared: its undo record lacks its rules",
                 fl_fault_id_ok(f->id) ? f->id : "?");
        return -EINVAL;
    }

    pthread_mutex_lock(&nft_lock);
    struct nft_ctx *nft = NULL;
    json_t *listing = NULL;
    struct fl_sbuf batch = {0};
    int rc = nft_open(&nft, err, errlen);
    /* no library (or no context): nothing reached nftables, so the revert
     * the registry runs after a failed apply has nothing to do. Only in
     * memory: the registry journals f->undo again only after an apply that
     * succeeded. */
    if (rc < 0)
        json_object_set_new(f->undo, "nothing_applied", json_true());
    if (rc == 0)
        rc = table_read(nft, table, &listing, err, errlen);
    if (rc == 0 && listing != NULL) {
        size_t k = 0;
        while ((r = next_rule(listing, table, &k)) != NULL && !is_rule_of(r, id))
            ;
        if (r != NULL) {
            snprintf(err, errlen,
                     "fault %s already has rules in table inet %s: revert it before applying "
                     "it again",
                     id, table);
            rc = -EEXIST;
        }
    }
    if (rc == 0) {
        add_setup(&batch, table, listing, (uint16_t)port, jaddr != NULL ? &addr : NULL);
        json_array_foreach(rules, i, r)
            fl_sbuf_add(&batch, "add rule inet %s %s\n", table, json_string_value(r));
        char what[96];
        snprintf(what, sizeof(what), "could not add the nftables rules of fault %s", id);
        rc = batch.oom ? -ENOMEM : nft_exec(nft, batch.p, NULL, what, err, errlen);
        if (rc == -ENOMEM && batch.oom)
            snprintf(err, errlen, "out of memory");
    }
    fl_sbuf_free(&batch);
    json_decref(listing);
    if (nft != NULL)
        nft_close(nft);
    pthread_mutex_unlock(&nft_lock);
    if (rc < 0)
        return rc;
    const char *detail = json_string_value(json_object_get(f->undo, "detail"));
    snprintf(f->detail, sizeof(f->detail), "%s", detail ? detail : "network_drop applied");
    return 0;
}

/* One pass of revert: 0 when done, -ENOENT when the table changed under us. */
static int revert_once(struct nft_ctx *nft, const char *table, const char *id, char *err,
                       size_t errlen)
{
    json_t *listing = NULL;
    int rc = table_read(nft, table, &listing, err, errlen);
    if (rc < 0 || listing == NULL)
        return rc;
    struct fl_sbuf batch = {0};
    size_t others = 0, mine = 0, i = 0;
    const json_t *r;
    while ((r = next_rule(listing, table, &i)) != NULL) {
        if (is_exemption_rule(r))
            continue;
        const json_t *chain = json_object_get(r, "chain");
        const json_t *handle = json_object_get(r, "handle");
        int c = json_str_is(chain, fl_netplan_chains[0])   ? 0
                : json_str_is(chain, fl_netplan_chains[1]) ? 1
                                                           : -1;
        if (c >= 0 && json_is_integer(handle) && json_integer_value(handle) > 0 &&
            is_rule_of(r, id)) {
            fl_sbuf_add(&batch, "delete rule inet %s %s handle %lld\n", table, fl_netplan_chains[c],
                        (long long)json_integer_value(handle));
            mine++;
        } else {
            others++; /* another fault's, or one we do not know: kept */
        }
    }
    json_decref(listing);
    if (others == 0) {
        /* nothing else left: the table goes, and the ruleset is as it was */
        fl_sbuf_free(&batch);
        fl_sbuf_add(&batch, "delete table inet %s\n", table);
    } else if (mine == 0) {
        fl_sbuf_free(&batch);
        return 0;
    }
    char what[96];
    snprintf(what, sizeof(what), "could not delete the nftables rules of fault %s", id);
    rc = batch.oom ? -ENOMEM : nft_exec(nft, batch.p, NULL, what, err, errlen);
    if (rc == -ENOMEM && batch.oom)
        snprintf(err, errlen, "out of memory");
    fl_sbuf_free(&batch);
    return rc;
}

static int network_revert(const json_t *undo, char *err, size_t errlen)
{
    const char *id = json_string_value(json_object_get(undo, "id"));
    if (!fl_fault_id_ok(id)) {
        snprintf(err, errlen,
                 "network_drop undo record has no plain fault id: cannot tell its rules");
        return -EINVAL;
    }
    if (json_is_true(json_object_get(undo, "nothing_applied")))
        return 0; /* its apply never reached nftables */
    const char *table = undo_table(undo);
    if (table == NULL) {
        snprintf(err, errlen,
                 "network_drop undo record of fault %s names no table of faultline's "
                 "(\"faultline\" or \"faultline_\" and 12 hex digits): cannot tell its rules",
                 id);
        return -EINVAL;
    }
    pthread_mutex_lock(&nft_lock);
    struct nft_ctx *nft = NULL;
    int rc = nft_open(&nft, err, errlen);
    /* a rule or the table may go away between listing and deleting (another
     * process at work): list again */
    for (int attempt = 0; rc == 0 && attempt < 3; attempt++) {
        rc = revert_once(nft, table, id, err, errlen);
        if (rc != -ENOENT)
            break;
        if (attempt < 2)
            rc = 0;
    }
    if (nft != NULL)
        nft_close(nft);
    pthread_mutex_unlock(&nft_lock);
    return rc;
}

int fl_network_remove_table(const char *table, char *err, size_t errlen)
{
    if (!fl_network_table_ok(table)) {
        snprintf(err, errlen, "refusing to delete table inet %s: not a name of faultline's",
                 table ? table : "(none)");
        return -EINVAL;
    }
    pthread_mutex_lock(&nft_lock);
    struct nft_ctx *nft = NULL;
    int rc = nft_open(&nft, err, errlen);
    if (rc == 0) {
        char first[384], cmd[96], what[96];
        snprintf(cmd, sizeof(cmd), "delete table inet %s", table);
        snprintf(what, sizeof(what), "could not delete table inet %s", table);
        rc = nft_exec(nft, cmd, NULL, what, first, sizeof(first));
        if (rc < 0) {
            json_t *listing = NULL;
            char why[384];
            if (table_read(nft, table, &listing, why, sizeof(why)) == 0 && listing == NULL)
                rc = 0; /* there was none */
            else
                snprintf(err, errlen, "%s", first);
            json_decref(listing);
        }
        nft_close(nft);
    }
    pthread_mutex_unlock(&nft_lock);
    return rc;
}

/* ------------------------------------------------------------ table names */

bool fl_network_table_ok(const char *name)
{
    if (name == NULL)
        return false;
    if (strcmp(name, FL_NETWORK_TABLE) == 0)
        return true;
    size_t n = strlen(FL_NETWORK_TABLE "_");
    if (strncmp(name, FL_NETWORK_TABLE "_", n) != 0 ||
        strlen(name + n) != FL_NETWORK_TABLE_HASH_DIGITS)
        return false;
    return strspn(name + n, "0123456789abcdef") == FL_NETWORK_TABLE_HASH_DIGITS;
}

void fl_network_table_for(const char *state_dir, char out[FL_NETWORK_TABLE_MAX])
{
    char *real = realpath(state_dir, NULL);
    const char *path = real != NULL ? real : state_dir;
    if (strcmp(path, FL_NETWORK_DEFAULT_STATE_DIR) == 0 ||
        strcmp(state_dir, FL_NETWORK_DEFAULT_STATE_DIR) == 0) {
        snprintf(out, FL_NETWORK_TABLE_MAX, "%s", FL_NETWORK_TABLE);
    } else {
        /* FNV-1a, 64 bits: stable across builds and hosts, no library */
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const unsigned char *c = (const unsigned char *)path; *c; c++)
            h = (h ^ *c) * 0x100000001b3ULL;
        snprintf(out, FL_NETWORK_TABLE_MAX, "%s_%0*llx", FL_NETWORK_TABLE,
                 FL_NETWORK_TABLE_HASH_DIGITS,
                 (unsigned long long)(h >> (64 - 4 * FL_NETWORK_TABLE_HASH_DIGITS)));
    }
    free(real);
}

const struct fl_fault_kind fl_kind_network_drop = {
    .name = "network_drop",
    .spec_case = FAULTLINE__FAULT_SPEC__KIND_NETWORK_DROP,
    .prepare = network_prepare,
    .apply = network_apply,
    .tick = NULL,
    .revert = network_revert,
};
