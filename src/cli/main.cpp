// reasonseg command-line tool: segment, tokenize, eval, bench, convert.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.hpp"
#include "reasonseg/error.hpp"

namespace {
const char* kUsage =
    "reasonseg: reasoning segmentation (LISA) in C++\n"
    "\n"
    "usage: reasonseg <command> [options]\n"
    "  segment   --model DIR --image FILE --prompt TEXT [--vision-tower DIR] [--device D] [--dtype T]\n"
    "            [--threads N] [--max-new-tokens N] [--answer TEXT] [--out-mask PREFIX] [--overlay FILE]\n"
    "            [--json FILE|-] [--dump-tensors FILE.safetensors] [--allow-special-tokens]\n"
    "  tokenize  --model DIR [--chat] [--json] TEXT\n"
    "  eval      --dataset DIR (--model DIR [--vision-tower DIR] [--mode generate|teacher-forced] | --pred-dir DIR)\n"
    "            [--json FILE] [--csv FILE] [--save-masks DIR] [--limit N] [--all-texts]\n"
    "  bench     (--model DIR [--vision-tower DIR] | --random-weights PRESET) [--image FILE] [--prompt TEXT]\n"
    "            [--device D] [--dtype T] [--threads N] [--runs N] [--new-tokens N] [--json FILE]\n"
    "  convert   (--model DIR | --random-weights PRESET) --out DIR [--format safetensors|bin] [--dtype T]\n"
    "\n"
    "Run 'reasonseg <command> --help' for details.\n";
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "segment") return reasonseg::cli::cmd_segment(argc, argv);
    if (cmd == "tokenize") return reasonseg::cli::cmd_tokenize(argc, argv);
    if (cmd == "eval") return reasonseg::cli::cmd_eval(argc, argv);
    if (cmd == "bench") return reasonseg::cli::cmd_bench(argc, argv);
    if (cmd == "convert") return reasonseg::cli::cmd_convert(argc, argv);
    std::fprintf(stderr, "reasonseg: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const reasonseg::Error& e) {
    std::fprintf(stderr, "reasonseg %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reasonseg %s: internal error: %s\n", cmd.c_str(), e.what());
    return 3;
  }
}
