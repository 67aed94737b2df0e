// LLaMA internals no fixture covers: grouped-query attention and incremental decoding.
#include <catch2/catch.hpp>

#include "models/llama.hpp"
#include "reasonseg/error.hpp"

using namespace reasonseg;

namespace {
struct Root : Module {
  explicit Root(const LlamaConfig& c) : llama(*this, c) {}
  Llama llama;
};

LlamaConfig small(int kv_heads) {
  LlamaConfig c;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.vocab_size = 50;
  c.max_position_embeddings = 64;
  return c;
}

std::map<std::string, torch::Tensor> tensors(Module& m) {
  std::vector<Module::Slot> slots;
  m.collect("", slots);
  std::map<std::string, torch::Tensor> out;
  for (auto& s : slots) out[s.key] = *s.value;
  return out;
}
}  // namespace

TEST_CASE("GQA equals multi-head attention with each KV head repeated", "[llama]") {
  torch::NoGradGuard ng;
  Root gqa(small(2)), mha(small(4));
  LoadSettings ls;
  randomize_module(gqa, ls, 7);
  std::vector<Module::Slot> slots;
  mha.collect("", slots);
  auto src = tensors(gqa);
  const int64_t hd = 16, rep = 2;
  for (auto& s : slots) {
    auto t = src.at(s.key);
    if (s.key.find("k_proj") != std::string::npos || s.key.find("v_proj") != std::string::npos)
      t = t.view({2, hd, 64}).repeat_interleave(rep, 0).reshape({4 * hd, 64});  // kv head j serves heads 2j, 2j+1
    *s.value = t.clone();
  }
  auto x = torch::randn({1, 9, 64}) * 0.5;
  auto c1 = gqa.llama.new_cache(16, torch::kFloat32, torch::kCPU), c2 = mha.llama.new_cache(16, torch::kFloat32, torch::kCPU);
  auto a = gqa.llama.forward(x, c1), b = mha.llama.forward(x, c2);
  REQUIRE((a - b).abs().max().item<float>() < 1e-5);
}

TEST_CASE("incremental decoding with the KV cache equals one full forward", "[llama]") {
  torch::NoGradGuard ng;
  Root m(small(2));
  LoadSettings ls;
  randomize_module(m, ls, 3);
  auto x = torch::randn({1, 12, 64}) * 0.5;
  auto full_cache = m.llama.new_cache(32, torch::kFloat32, torch::kCPU);
  auto full = m.llama.forward(x, full_cache);
  auto cache = m.llama.new_cache(32, torch::kFloat32, torch::kCPU);
  auto head = m.llama.forward(x.narrow(1, 0, 7), cache);
  std::vector<torch::Tensor> rows{head};
  for (int i = 7; i < 12; ++i) rows.push_back(m.llama.forward(x.narrow(1, i, 1), cache));
  auto inc = torch::cat(rows, 1);
  REQUIRE(cache.length == 12);
  REQUIRE((inc - full).abs().max().item<float>() < 1e-5);
  // Going past the cache's capacity is an error, not a crash.
  auto tiny = m.llama.new_cache(4, torch::kFloat32, torch::kCPU);
  REQUIRE_THROWS_AS(m.llama.forward(x.narrow(1, 0, 5), tiny), Error);
}

TEST_CASE("bf16: one-token decoding steps (fused kernels on AVX512-BF16 CPUs) match the prompt path", "[llama][bf16]") {
  torch::NoGradGuard ng;
  Root m(small(2));
  LoadSettings ls;
  ls.dtype = torch::kBFloat16;
  randomize_module(m, ls, 5);
  auto x = (torch::randn({1, 12, 64}) * 0.5).to(torch::kBFloat16);
  auto full_cache = m.llama.new_cache(32, torch::kBFloat16, torch::kCPU);
  auto full = m.llama.forward(x, full_cache).to(torch::kFloat32);
  auto cache = m.llama.new_cache(32, torch::kBFloat16, torch::kCPU);
  std::vector<torch::Tensor> rows{m.llama.forward(x.narrow(1, 0, 7), cache)};
  for (int i = 7; i < 12; ++i) rows.push_back(m.llama.forward(x.narrow(1, i, 1), cache));
  auto inc = torch::cat(rows, 1).to(torch::kFloat32);
  // Both paths round to bf16 at different points; the final RMSNorm output is O(1).
  const float err = (inc - full).abs().max().item<float>(), scale = full.abs().max().item<float>();
  INFO("max |incremental - full| = " << err << " of max |full| = " << scale);
  REQUIRE(err <= 0.03f * scale);
}

TEST_CASE("the fixed-shape decoding step (graph-captured on CUDA) equals plain decoding", "[llama]") {
  torch::NoGradGuard ng;
  Root m(small(2));
  LoadSettings ls;
  randomize_module(m, ls, 11);
  const std::vector<int64_t> prompt{3, 17, 5, 42, 8, 1, 29}, answer{11, 0, 49, 23, 7};
  auto ids = [](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); };
  auto plain = m.llama.new_cache(32, torch::kFloat32, torch::kCPU);
  auto stat = m.llama.new_cache(32, torch::kFloat32, torch::kCPU);
  m.llama.forward(m.llama.embed(ids(prompt)), plain);
  m.llama.forward(m.llama.embed(ids(prompt)), stat);
  // Positions past the token hold garbage (earlier queries' keys/values): masking must hide it.
  for (size_t l = 0; l < stat.k.size(); ++l) {
    stat.k[l].narrow(2, stat.length, 32 - stat.length).fill_(1e4);
    stat.v[l].narrow(2, stat.length, 32 - stat.length).fill_(-1e4);
  }
  StaticDecodeInputs in;
  in.token = torch::zeros({1}, torch::kLong);
  in.position = torch::zeros({1}, torch::kLong);
  in.span_positions = torch::arange(16, torch::kLong);  // a span longer than the sequence
  m.llama.rope_table(torch::kFloat32, torch::kCPU, in.cos, in.sin);
  for (int64_t tok : answer) {
    auto want = m.llama.forward(m.llama.embed(ids({tok})), plain)[0][0];
    in.token.fill_(tok);
    in.position.fill_(stat.length);
    auto got = m.llama.decode_static(in, stat)[0][0];
    stat.length += 1;
    INFO("position " << stat.length - 1);
    REQUIRE((got - want).abs().max().item<float>() < 1e-5);
    REQUIRE((m.llama.logits(got) - m.llama.logits(want)).abs().max().item<float>() < 1e-4);
  }
  REQUIRE((stat.k[1].narrow(2, 0, plain.length) - plain.k[1].narrow(2, 0, plain.length)).abs().max().item<float>() < 1e-5);
}
