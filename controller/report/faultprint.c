#include "controller/report/faultprint.h"

#include "common/faultkind.h"
#include "common/units.h"

const char *fl_fault_kind_name(const Faultline__FaultSpec *spec)
{
    /* the common table: it also names kinds the controller never sends
     * (test_fault, injected by tests straight over the wire) */
    const char *name = spec == NULL ? NULL : fl_kind_name(spec->kind_case);
    return name ? name : "?";
}

static const char *state_name(Faultline__FaultState s)
{
    switch (s) {
    case FAULTLINE__FAULT_STATE__FAULT_STATE_ACTIVE:
        return "active";
    case FAULTLINE__FAULT_STATE__FAULT_STATE_REVERTED:
        return "reverted";
    case FAULTLINE__FAULT_STATE__FAULT_STATE_EXPIRED:
        return "expired";
    case FAULTLINE__FAULT_STATE__FAULT_STATE_LEASE_LOST:
        return "lease-lost";
    case FAULTLINE__FAULT_STATE__FAULT_STATE_FAILED:
        return "FAILED";
    case FAULTLINE__FAULT_STATE__FAULT_STATE_REVERT_FAILED:
        return "REVERT FAILED";
    default:
        return "?";
    }
}

void fl_print_fault(FILE *out, const char *indent, const Faultline__Fault *f)
{
    char when[32] = "";
    if (f->state == FAULTLINE__FAULT_STATE__FAULT_STATE_ACTIVE) {
        char left[24];
        fl_format_duration(f->remaining_ms, left, sizeof(left));
        snprintf(when, sizeof(when), "%s left", left);
    }
    fprintf(out, "%s%-18s %-13s %-13s %-12s %s%s\n", indent, f->id, fl_fault_kind_name(f->spec),
            state_name(f->state), when, f->detached ? "" : "(leased) ",
            f->detail && f->detail[0] ? f->detail : "");
}
