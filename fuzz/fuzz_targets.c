#include "fuzz.h"

const struct fuzz_target fuzz_targets[] = {
    {"frame", fuzz_frame},     {"conf", fuzz_conf},       {"dict", fuzz_dict},
    {"ckpt", fuzz_ckpt},       {"redo", fuzz_redo},       {"nsf", fuzz_nsf},
    {"gcpfile", fuzz_gcpfile}, {"rcbound", fuzz_rcbound}, {"manifest", fuzz_manifest},
    {"client", fuzz_client},
    {"arbrec", fuzz_arbrec},   {"sqlstmt", fuzz_sqlstmt}, {"pgwmsg", fuzz_pgwmsg},
};
const unsigned fuzz_ntargets = sizeof fuzz_targets / sizeof fuzz_targets[0];
