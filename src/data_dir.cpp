// Version and data directory, found relative to the loaded library (see reasonseg/version.hpp).
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>

#include "reasonseg/version.hpp"
#include "util/error.hpp"

#ifndef REASONSEG_DATA_REL
#define REASONSEG_DATA_REL "../share/reasonseg"
#endif
#ifndef REASONSEG_VERSION
#define REASONSEG_VERSION "0.0.0"
#endif

namespace fs = std::filesystem;

namespace reasonseg {

const char* version() { return REASONSEG_VERSION; }

std::string data_dir() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("REASONSEG_DATA_DIR"); env && *env) candidates.push_back(env);
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&data_dir), &info) && info.dli_fname) {
    const fs::path lib_dir = fs::path(info.dli_fname).parent_path();
    candidates.push_back(lib_dir / REASONSEG_DATA_REL);  // installed
    candidates.push_back(lib_dir / "share" / "reasonseg");  // build tree
  }
  std::string tried;
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_directory(c, ec)) return fs::weakly_canonical(c, ec).string();
    tried += " " + c.string();
  }
  fail("reasonseg's data directory was not found (tried:", tried, "); set REASONSEG_DATA_DIR");
}

std::string data_path(const std::string& relative) {
  const fs::path p = fs::path(data_dir()) / relative;
  std::error_code ec;
  if (!fs::exists(p, ec)) fail(p.string(), ": not found in reasonseg's data directory (set REASONSEG_DATA_DIR)");
  return p.string();
}

}  // namespace reasonseg
