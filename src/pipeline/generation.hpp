// Stage 4, generation: the prefill from the first uncached position, then greedy decoding (or,
// with an answer, teacher forcing), keeping the hidden state that precedes every [SEG].
#pragma once
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "pipeline/image_state.hpp"
#include "pipeline/loaded_model.hpp"
#include "pipeline/prompt_cache.hpp"
#include "pipeline/text_stream.hpp"
#include "reasonseg/options.hpp"
#include "reasonseg/segmenter.hpp"
#include "reasonseg/trace.hpp"

namespace reasonseg {

struct Generation {
  std::vector<int64_t> output_ids;  // generated ids; teacher forcing: the answer's ids
  StopReason stopped_by = StopReason::MaxNewTokens;
  torch::Tensor seg_hidden;         // [n, H] final-norm hidden state before each [SEG] (or undefined)
  int64_t prefill_tokens = 0;       // positions the prefill computed (the rest came from caches)
  int64_t decode_tokens = 0;        // tokens generated
};

// What may end decoding early besides EOS and the token limit: the streaming sink asking to stop, a deadline.
struct DecodeControl {
  TextStream* stream = nullptr;  // receives every generated id but EOS
  bool has_deadline = false;
  std::chrono::steady_clock::time_point deadline;
};

// Runs plan.seq[keep:] through the LLM into st.cache, then decodes up to `max_new` tokens (none
// with teacher forcing, where plan.seg_rows say which hidden states feed SAM). Times: prefill, decode.
Generation generate(const LoadedModel& m, ImageState& st, const PromptPlan& plan, int64_t keep, bool teacher_forced,
                    int max_new, const QueryOptions& q, const DecodeControl& control, TraceSink* trace,
                    std::map<std::string, double>& ms);

}  // namespace reasonseg
