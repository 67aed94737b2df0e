#include "pipeline/prompt_cache.hpp"

#include <ATen/ATen.h>

#include <algorithm>

#include "util/error.hpp"

namespace reasonseg {

PromptPlan plan_prompt(const LoadedModel& m, const std::string& text, const std::string* answer,
                       const std::vector<ConversationTurn>& history) {
  PromptPlan p;
  Prompt prompt = build_prompt(m.tpl, text, m.cfg.mm_use_im_start_end, answer, history);
  p.input_ids = tokenize_prompt(*m.tok, prompt, m.opt.allow_special_tokens_in_prompt);
  int images = 0;
  for (auto id : p.input_ids) images += id == kImageTokenIndex;
  if (images != 1) fail("instruction: the prompt must hold exactly one <image> (found ", images, ")");
  const int n_img = m.cfg.image_tokens();
  std::vector<int64_t> row_of(p.input_ids.size());
  for (size_t k = 0; k < p.input_ids.size(); ++k) {
    row_of[k] = int64_t(p.seq.size());
    if (p.input_ids[k] == kImageTokenIndex)
      for (int i = 0; i < n_img; ++i) p.seq.push_back(-(1000 + i));
    else p.seq.push_back(p.input_ids[k]);
  }
  if (answer)  // the hidden state of the token before each [SEG] of the answer
    for (size_t k = 0; k + 1 < p.input_ids.size(); ++k)
      if (p.input_ids[k + 1] == m.seg_id) p.seg_rows.push_back(row_of[k]);
  const int64_t max_pos = m.cfg.llm.max_position_embeddings;
  if (int64_t(p.seq.size()) > max_pos) {
    if (history.empty())
      fail("instruction: the prompt needs ", p.seq.size(), " positions but the model's context is ", max_pos);
    fail("instruction: the conversation (", history.size(), " earlier turns and this one) needs ", p.seq.size(),
         " positions but the model's context is ", max_pos, "; drop turns with ImageContext::truncate_history");
  }
  return p;
}

torch::Tensor embed_sequence(const LoadedModel& m, const ImageState& st, const std::vector<int64_t>& seq, size_t from) {
  std::vector<torch::Tensor> parts;
  size_t i = from;
  while (i < seq.size()) {
    size_t j = i;
    if (seq[i] >= 0) {
      while (j < seq.size() && seq[j] >= 0) ++j;
      std::vector<int64_t> ids(seq.begin() + i, seq.begin() + j);
      parts.push_back(m.model->llama.embed(torch::tensor(ids, torch::kLong))[0]);
    } else {
      while (j < seq.size() && seq[j] < 0) ++j;
      int64_t first = -(seq[i] + 1000);
      parts.push_back(st.clip_features.narrow(0, first, int64_t(j - i)));
    }
    i = j;
  }
  return at::cat(parts, 0).unsqueeze(0);
}

std::shared_ptr<const TextPrefixCache::Entry> TextPrefixCache::get(const LoadedModel& m, const ImageState& st,
                                                                   const std::vector<int64_t>& seq) const {
  const auto image_at = std::find_if(seq.begin(), seq.end(), [](int64_t id) { return id < 0; });
  const int64_t len = image_at - seq.begin();
  if (image_at == seq.end() || len < 2) return nullptr;
  std::lock_guard<std::mutex> lock(mutex_);  // one thread computes it, the others wait
  if (!entry_) {
    auto e = std::make_shared<Entry>();
    e->seq.assign(seq.begin(), image_at);
    e->kv = m.model->llama.new_cache(len, m.dtype, m.device);
    m.model->llama.forward(embed_sequence(m, st, e->seq, 0), e->kv);
    entry_ = std::move(e);
  }
  // A prompt whose text before the image differs (not produced by this model's template) runs in full.
  if (entry_->seq.size() != size_t(len) || !std::equal(entry_->seq.begin(), entry_->seq.end(), seq.begin()))
    return nullptr;
  return entry_;
}

int64_t reuse_cache(const LoadedModel& m, const TextPrefixCache& prefix, ImageState& st, const PromptPlan& plan,
                    int64_t limit, int max_new) {
  const auto& seq = plan.seq;
  const int64_t T0 = int64_t(seq.size()), max_pos = m.cfg.llm.max_position_embeddings;
  int64_t keep = 0;
  while (keep < int64_t(st.seq.size()) && keep < T0 && st.seq[keep] == seq[keep]) ++keep;
  keep = std::min(keep, limit);
  // A new image: the text before it comes from the model's shared prefix cache.
  auto pre = prefix.get(m, st, seq);
  const int64_t len = pre ? pre->kv.length : 0;
  if (pre && (keep >= len || len > limit)) pre.reset();
  const int64_t need = std::min<int64_t>(max_pos, T0 + max_new);
  if (st.cache.capacity() < need) {
    KVCache c = m.model->llama.new_cache(std::min<int64_t>(max_pos, (need + 255) / 256 * 256), m.dtype, m.device);
    if (!pre) copy_positions(c, st.cache, keep);  // with a prefix, the prefix replaces these positions
    st.cache = std::move(c);
  }
  if (pre) {
    keep = pre->kv.length;
    copy_positions(st.cache, pre->kv, keep);
  }
  st.cache.length = keep;
  st.seq.assign(seq.begin(), seq.begin() + keep);
  return keep;
}

}  // namespace reasonseg
