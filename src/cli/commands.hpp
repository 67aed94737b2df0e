// The subcommands of the reasonseg CLI; each returns the process exit code.
#pragma once

namespace reasonseg::cli {

int cmd_tokenize(int argc, char** argv);
int cmd_segment(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_convert(int argc, char** argv);

}  // namespace reasonseg::cli
