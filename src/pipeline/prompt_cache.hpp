// Stage 3, prompt and key/value cache: the chat prompt expanded to one position per image patch,
// and the longest prefix of it whose keys/values can be reused instead of recomputed.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pipeline/image_state.hpp"
#include "pipeline/loaded_model.hpp"

namespace reasonseg {

struct PromptPlan {
  std::vector<int64_t> input_ids;  // the prompt's ids, one kImageTokenIndex for the image
  std::vector<int64_t> seq;        // one position each: image patch i is -(1000 + i)
  std::vector<int64_t> seg_rows;   // teacher forcing: positions of the token before each [SEG]
};

// Renders and tokenizes `history` and `text` (plus `answer` and </s> for teacher forcing) with the
// model's template; checks the image count and the context length.
PromptPlan plan_prompt(const LoadedModel& m, const std::string& text, const std::string* answer,
                       const std::vector<ConversationTurn>& history = {});

// Embeddings of seq[from:]: token ids through embed_tokens, image positions from the CLIP features.
torch::Tensor embed_sequence(const LoadedModel& m, const ImageState& st, const std::vector<int64_t>& seq, size_t from);

// Keys/values of the text before the image (system prompt, "USER:"), the same for every image and
// instruction: the first query computes them under a lock, later first queries on new images copy
// them (35 of LISA-7B's 311 prompt positions). Shared by all threads querying one model.
class TextPrefixCache {
 public:
  struct Entry {
    std::vector<int64_t> seq;
    KVCache kv;  // exactly seq.size() positions
  };
  // The cached prefix of `seq`, computing it on first use; null when `seq` does not start with it.
  std::shared_ptr<const Entry> get(const LoadedModel& m, const ImageState& st, const std::vector<int64_t>& seq) const;

 private:
  mutable std::mutex mutex_;
  mutable std::shared_ptr<const Entry> entry_;
};

// Makes st.cache hold keys/values for the longest reusable prefix of plan.seq (kept from the
// image's previous prompt, or copied from the model's text prefix), at most `limit` positions, with
// room for `max_new` more tokens. Returns the first position the prefill must compute.
int64_t reuse_cache(const LoadedModel& m, const TextPrefixCache& prefix, ImageState& st, const PromptPlan& plan,
                    int64_t limit, int max_new);

}  // namespace reasonseg
