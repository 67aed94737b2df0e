#include "cli/args.hpp"

#include <algorithm>

#include "reasonseg/process.hpp"
#include "util/error.hpp"

namespace reasonseg::cli {

const std::vector<OptionSpec>& model_option_specs() {
  static const std::vector<OptionSpec> specs = {
      {"model", "DIR", "checkpoint directory (HF layout: config.json, tokenizer.model, weights)"},
      {"vision-tower", "DIR", "CLIP tower directory (default: from config.json, relative to --model)"},
      {"random-weights", "PRESET", "random weights of a full-size preset instead of --model (lisa-7b, lisa-13b, sesame-7b, mid)"},
      {"device", "D", "auto, cpu or cuda (auto)"},
      {"dtype", "T", "auto, fp32, bf16 or fp16 (auto: bf16 where the hardware has it)"},
      {"quantize", "Q", "none or int8: LLM linear layers as int8 weights, quantized at load (none)"},
      {"quantize-group", "N", "input values per int8 scale: 32, 64, 128 or 256 (64)"},
      {"threads", "N", "CPU threads (all cores)"},
      {"max-new-tokens", "N", "generation stops after N tokens (512)"},
      {"family", "F", "model family: auto, lisa, sesame or lisa++ (auto: from config.json)"},
      {"template", "NAME", "conversation template: llava_v1, vicuna_v1 or llava_llama_2 (the family's)"},
      {"max-image-pixels", "N", "refuse larger images before decoding them (1e8)"},
      {"allow-special-tokens", "", "let [SEG], </s>, ... typed in a prompt act as tokens"},
      {"copy-weights", "", "copy weights into memory instead of mapping the files"},
      {"quiet", "", "no progress output"},
  };
  return specs;
}

CommandSpec model_command(std::string name, std::string synopsis, std::string summary, std::vector<OptionSpec> own,
                          std::string details) {
  CommandSpec s{std::move(name), std::move(synopsis), std::move(summary), model_option_specs(), std::move(details)};
  s.options.insert(s.options.end(), own.begin(), own.end());
  return s;
}

std::string help_text(const CommandSpec& spec) {
  std::string out = "usage: reasonseg " + spec.name + " " + spec.synopsis + " [options]\n" + spec.summary + "\n\noptions:\n";
  size_t width = 0;
  auto left = [](const OptionSpec& o) { return "--" + o.name + (o.value.empty() ? "" : " " + o.value); };
  for (const auto& o : spec.options) width = std::max(width, left(o).size());
  for (const auto& o : spec.options) {
    std::string l = left(o);
    out += "  " + l + std::string(width + 2 - l.size(), ' ') + o.help + "\n";
  }
  out += "  --help" + std::string(width - 4, ' ') + "this text\n";
  if (!spec.details.empty()) out += "\n" + spec.details + "\n";
  return out;
}

Args::Args(int argc, char** argv, int first, const CommandSpec& spec) {
  std::set<std::string> value_opts, flags = {"help"};
  for (const auto& o : spec.options) (o.value.empty() ? flags : value_opts).insert(o.name);
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
        fail("unknown option --", name, " ('reasonseg ", spec.name, " --help' lists its options)");
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

SegmenterOptions segmenter_options(const Args& a) {
  SegmenterOptions o;
  o.model_dir = a.get("model");
  o.vision_tower_dir = a.get("vision-tower");
  o.random_weights = a.get("random-weights");
  if (o.model_dir.empty() && o.random_weights.empty()) fail("--model DIR (or --random-weights PRESET) is required");
  o.device = parse_device(a.get("device", "auto"));
  o.dtype = parse_dtype(a.get("dtype", "auto"));
  o.max_new_tokens = a.get_int("max-new-tokens", 512);
  o.quantize = parse_quantization(a.get("quantize", "none"));
  o.quantize_group_size = a.get_int("quantize-group", o.quantize_group_size);
  const double max_pixels = a.get_double("max-image-pixels", double(o.max_image_pixels));
  if (!(max_pixels >= 1 && max_pixels <= 1e12)) fail("--max-image-pixels: ", max_pixels, " is out of range (1 to 1e12)");
  o.max_image_pixels = int64_t(max_pixels);
  o.conv_template = a.get("template");
  o.family = parse_model_family(a.get("family", "auto"));
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
