#include "cli/args.hpp"

#include "reasonseg/process.hpp"
#include "util/error.hpp"

namespace reasonseg::cli {

Args::Args(int argc, char** argv, int first, const std::set<std::string>& value_opts,
           const std::set<std::string>& flags) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) == 0 && a.size() > 2) {
      std::string name = a.substr(2), value;
      auto eq = name.find('=');
      bool inline_value = eq != std::string::npos;
      if (inline_value) value = name.substr(eq + 1), name = name.substr(0, eq);
      if (flags.count(name)) {
        if (inline_value) fail("--", name, " takes no value");
        flags_.insert(name);
      } else if (value_opts.count(name)) {
        if (!inline_value) {
          if (i + 1 >= argc) fail("--", name, " needs a value");
          const std::string next = argv[i + 1];
          // "--model --image x": the value is missing, not --image (write --opt=--text for such a value).
          if (next.rfind("--", 0) == 0 && next.size() > 2) {
            const std::string other = next.substr(2, next.find('=') == std::string::npos ? std::string::npos : next.find('=') - 2);
            if (value_opts.count(other) || flags.count(other))
              fail("--", name, " needs a value (found the option ", next, " instead)");
          }
          value = argv[++i];
        }
        values_[name] = value;
      } else {
        std::string known;
        for (auto& v : value_opts) known += " --" + v;
        for (auto& f : flags) known += " --" + f;
        fail("unknown option --", name, " (known:", known, ")");
      }
    } else {
      positional_.push_back(a);
    }
  }
}

std::string Args::get(const std::string& name, const std::string& def) const {
  auto it = values_.find(name);
  return it == values_.end() ? def : it->second;
}

std::string Args::require(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) fail("--", name, " is required");
  if (it->second.empty()) fail("--", name, " is empty");
  return it->second;
}

int Args::get_int(const std::string& name, int def) const {
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  try {
    size_t pos = 0;
    int v = std::stoi(it->second, &pos);
    if (pos != it->second.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    fail("--", name, ": '", it->second, "' is not an integer");
  }
}

double Args::get_double(const std::string& name, double def) const {
  auto it = values_.find(name);
  if (it == values_.end()) return def;
  try {
    size_t pos = 0;
    double v = std::stod(it->second, &pos);
    if (pos != it->second.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    fail("--", name, ": '", it->second, "' is not a number");
  }
}

const std::set<std::string> kModelOptions = {"model", "vision-tower", "device", "dtype", "threads",
                                              "max-new-tokens", "template", "random-weights", "max-image-pixels"};

SegmenterOptions segmenter_options(const Args& a) {
  SegmenterOptions o;
  o.model_dir = a.get("model");
  o.vision_tower_dir = a.get("vision-tower");
  o.random_weights = a.get("random-weights");
  if (o.model_dir.empty() && o.random_weights.empty()) fail("--model DIR (or --random-weights PRESET) is required");
  o.device = parse_device(a.get("device", "auto"));
  o.dtype = parse_dtype(a.get("dtype", "auto"));
  o.max_new_tokens = a.get_int("max-new-tokens", 512);
  const double max_pixels = a.get_double("max-image-pixels", double(o.max_image_pixels));
  if (!(max_pixels >= 1 && max_pixels <= 1e12)) fail("--max-image-pixels: ", max_pixels, " is out of range (1 to 1e12)");
  o.max_image_pixels = int64_t(max_pixels);
  o.conv_template = a.get("template", "llava_v1");
  o.allow_special_tokens_in_prompt = a.has("allow-special-tokens");
  o.progress = !a.has("quiet");
  o.zero_copy_weights = !a.has("copy-weights");
  // The CLI owns its process: it opts in to the process-wide tuning a library must not impose.
  ProcessSettings ps;
  ps.threads = a.get_int("threads", 0);
  const DType run = o.dtype == DType::Auto ? auto_dtype(o.device == Device::CUDA ? Device::CUDA : Device::CPU) : o.dtype;
  ps.passive_openmp_wait = run == DType::Float32 && o.device != Device::CUDA;
  configure_process(ps);
  return o;
}

}  // namespace reasonseg::cli
