// A small command-line parser: --name value, --flag, and positional arguments.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "reasonseg/options.hpp"

namespace reasonseg::cli {

// One option of a command: the single table that parsing, `--help` and error messages all read.
struct OptionSpec {
  std::string name;   // without the leading "--"
  std::string value;  // what the value is ("DIR", "N"); empty for a flag
  std::string help;   // one line; the default, if any, in parentheses
};

struct CommandSpec {
  std::string name;      // "segment"
  std::string synopsis;  // the required options ("--model DIR --image FILE --prompt TEXT")
  std::string summary;   // one line for `reasonseg --help`
  std::vector<OptionSpec> options;  // every option; --help is implied
  std::string details;   // text after the option list
};

// The options every model-loading command shares (--model, --vision-tower, --device, ...).
const std::vector<OptionSpec>& model_option_specs();
// A model-loading command: the shared model options, then `own`.
CommandSpec model_command(std::string name, std::string synopsis, std::string summary, std::vector<OptionSpec> own,
                          std::string details);
// `reasonseg NAME --help`: synopsis, the option table, details.
std::string help_text(const CommandSpec& spec);

class Args {
 public:
  // Options of `spec` (plus --help); anything else starting with "--" is an error naming the command.
  Args(int argc, char** argv, int first, const CommandSpec& spec);
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

// SegmenterOptions from the shared model options (and the CLI's process settings, see args.cpp).
SegmenterOptions segmenter_options(const Args& a);

}  // namespace reasonseg::cli
