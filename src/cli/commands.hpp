// The subcommands of the reasonseg CLI; each returns the process exit code.
#pragma once
#include "cli/args.hpp"

namespace reasonseg::cli {

// The option table of each command (also the source of its --help and of `reasonseg --help`).
const CommandSpec& segment_spec();
const CommandSpec& tokenize_spec();
const CommandSpec& eval_spec();
const CommandSpec& bench_spec();
const CommandSpec& convert_spec();

int cmd_tokenize(const Args& a);
int cmd_segment(const Args& a);
int cmd_eval(const Args& a);
int cmd_bench(const Args& a);
int cmd_convert(const Args& a);

}  // namespace reasonseg::cli
