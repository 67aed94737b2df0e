// A small command-line parser: --name value, --flag, and positional arguments.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "reasonseg/options.hpp"

namespace reasonseg::cli {

class Args {
 public:
  // `value_opts` take a value, `flags` do not; anything else starting with "--" is an error.
  Args(int argc, char** argv, int first, const std::set<std::string>& value_opts, const std::set<std::string>& flags);
  bool has(const std::string& name) const { return values_.count(name) || flags_.count(name); }
  std::string get(const std::string& name, const std::string& def = "") const;
  std::string require(const std::string& name) const;
  int get_int(const std::string& name, int def) const;
  double get_double(const std::string& name, double def) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
  std::vector<std::string> positional_;
};

// The option names every model-loading command shares, and their translation.
extern const std::set<std::string> kModelOptions;  // model, vision-tower, device, dtype, threads, ...
SegmenterOptions segmenter_options(const Args& a);

}  // namespace reasonseg::cli
