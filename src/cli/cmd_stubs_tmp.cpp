#include "cli/commands.hpp"
#include "util/error.hpp"
namespace reasonseg::cli {
int cmd_eval(int, char**) { fail("eval: not built yet"); }
int cmd_bench(int, char**) { fail("bench: not built yet"); }
int cmd_convert(int, char**) { fail("convert: not built yet"); }
}
