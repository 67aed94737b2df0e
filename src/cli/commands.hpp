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

int cmd_tokenize(int argc, char** argv);
int cmd_segment(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_convert(int argc, char** argv);

}  // namespace reasonseg::cli
