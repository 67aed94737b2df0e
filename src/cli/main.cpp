// reasonseg command-line tool: segment, tokenize, eval, bench, convert, version.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.hpp"
#include "reasonseg/error.hpp"
#include "reasonseg/version.hpp"

namespace {

using reasonseg::cli::CommandSpec;

struct Command {
  const CommandSpec& (*spec)();
  int (*run)(const reasonseg::cli::Args&);
};

const Command kCommands[] = {
    {reasonseg::cli::segment_spec, reasonseg::cli::cmd_segment},
    {reasonseg::cli::eval_spec, reasonseg::cli::cmd_eval},
    {reasonseg::cli::bench_spec, reasonseg::cli::cmd_bench},
    {reasonseg::cli::tokenize_spec, reasonseg::cli::cmd_tokenize},
    {reasonseg::cli::convert_spec, reasonseg::cli::cmd_convert},
};

// Generated from the same tables as every command's --help.
std::string usage() {
  std::string out = "reasonseg " + std::string(reasonseg::version()) +
                    ": reasoning segmentation (LISA) in C++\n\nusage: reasonseg <command> [options]\n\n";
  for (const auto& c : kCommands) {
    const auto& s = c.spec();
    out += "  " + s.name + std::string(10 - s.name.size(), ' ') + s.summary + "\n" + std::string(12, ' ') +
           "reasonseg " + s.name + " " + s.synopsis + " [options]\n";
  }
  out += "  version   prints the library version and where its data files are\n";
  out += "\n'reasonseg <command> --help' lists a command's options.\n";
  return out;
}

int cmd_version() {
  std::printf("reasonseg %s\n", reasonseg::version());
  try {
    std::printf("data directory: %s\n", reasonseg::data_dir().c_str());
  } catch (const reasonseg::Error& e) {
    std::printf("data directory: not found (%s)\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(usage().c_str(), argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "version" || cmd == "--version") return cmd_version();
    for (const auto& c : kCommands) {
      if (c.spec().name != cmd) continue;
      // One parse against the command's option table; --help prints that table.
      const reasonseg::cli::Args args(argc, argv, 2, c.spec());
      if (args.has("help")) {
        std::fputs(reasonseg::cli::help_text(c.spec()).c_str(), stdout);
        return 0;
      }
      return c.run(args);
    }
    std::fprintf(stderr, "reasonseg: unknown command '%s'\n\n%s", cmd.c_str(), usage().c_str());
    return 2;
  } catch (const reasonseg::Error& e) {
    std::fprintf(stderr, "reasonseg %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reasonseg %s: internal error: %s\n", cmd.c_str(), e.what());
    return 3;
  }
}
