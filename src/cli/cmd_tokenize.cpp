// reasonseg tokenize: ids of a text, or of the full chat prompt.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "config/config.hpp"
#include "reasonseg/tokenizer.hpp"
#include "util/error.hpp"

namespace reasonseg::cli {

const CommandSpec& tokenize_spec() {
  static const CommandSpec spec{
      "tokenize", "--model DIR TEXT", "Prints the token ids of a text, exactly as transformers 4.31 tokenizes it.",
      {{"model", "DIR", "directory holding tokenizer.model (and added_tokens.json)"},
       {"chat", "", "tokenize the single-turn chat prompt for TEXT (prints the prompt too; -200 marks the image)"},
       {"template", "NAME", "conversation template for --chat: llava_v1, vicuna_v1 or llava_llama_2 (the family's)"},
       {"json", "", "print {\"prompt\", \"ids\"} as JSON"},
       {"allow-special-tokens", "", "let [SEG], </s>, ... in TEXT act as tokens"}},
      "Ids start with BOS. User text never yields control tokens unless --allow-special-tokens."};
  return spec;
}

int cmd_tokenize(const Args& a) {
  const std::string model = a.require("model");
  if (a.positional().size() != 1) fail("tokenize: give exactly one TEXT argument (quote it)");
  const std::string text = a.positional()[0];
  Tokenizer tok = Tokenizer::from_dir(model);
  std::string prompt = text;
  std::vector<int64_t> ids;
  if (a.has("chat")) {
    LisaConfig cfg = read_lisa_config(model);
    const ConvTemplate tpl = a.has("template") ? parse_conv_template(a.get("template"))
                                               : default_conv_template(detect_family(cfg));
    Prompt p = build_prompt(tpl, text, cfg.mm_use_im_start_end);
    prompt = p.text;
    ids = tokenize_prompt(tok, p, a.has("allow-special-tokens"));
  } else {
    Tokenizer::Ranges plain;
    if (!a.has("allow-special-tokens")) plain.push_back({0, text.size()});
    ids = tok.encode(text, true, plain);
  }
  if (a.has("json")) {
    nlohmann::json j;
    if (a.has("chat")) j["prompt"] = prompt;
    j["ids"] = ids;
    std::cout << j.dump() << "\n";
  } else {
    if (a.has("chat")) std::cout << prompt << "\n";
    for (size_t i = 0; i < ids.size(); ++i) std::cout << (i ? " " : "") << ids[i];
    std::cout << "\n";
  }
  return 0;
}

}  // namespace reasonseg::cli
