#include "pipeline/generation.hpp"

#include <ATen/ATen.h>

#include "pipeline/finite.hpp"
#include "pipeline/stage_clock.hpp"
#include "pipeline/trace.hpp"

namespace reasonseg {

namespace {

// One decoding step: `token` at the next cache position; `last` and `logits` receive its final
// hidden state [H] and logits. On CUDA a replayed graph (its outputs are overwritten by the next
// step: keep copies), elsewhere plain launches.
void decode_step(const LoadedModel& m, ImageState& st, int64_t token, torch::Tensor& last, torch::Tensor& logits,
                 std::vector<torch::Tensor>* hiddens) {
  const auto& llama = m.model->llama;
  if (m.device.is_cuda() && m.opt.cuda_graphs && cuda_support_compiled()) {
    if (!st.graph_decoder || !st.graph_decoder->serves(st.cache))
      st.graph_decoder = std::make_unique<LlamaGraphDecoder>(llama, st.cache);
    st.graph_decoder->step(token, last, logits);
    if (hiddens) hiddens->push_back(last.unsqueeze(0).clone());
    return;
  }
  auto h = llama.forward(llama.embed(torch::tensor({token}, torch::kLong)), st.cache);
  if (hiddens) hiddens->push_back(h[0]);
  last = h[0][-1];
  logits = llama.logits(last);
}

}  // namespace

Generation generate(const LoadedModel& m, ImageState& st, const PromptPlan& plan, int64_t keep, bool teacher_forced,
                    int max_new, const QueryOptions& q, const DecodeControl& control, TraceSink* trace,
                    std::map<std::string, double>& ms) {
  const auto& llama = m.model->llama;
  const int64_t T0 = int64_t(plan.seq.size());
  Generation g;
  StageClock prefill_clock(m.device);
  auto embeds = embed_sequence(m, st, plan.seq, size_t(keep));
  auto hidden = llama.forward(embeds, st.cache);
  st.seq = plan.seq;
  ms["prefill"] = prefill_clock.ms();
  g.prefill_tokens = T0 - keep;
  report(trace, "prefill_start", torch::tensor({float(keep)}));
  report(trace, "llm_inputs_embeds", embeds);

  if (teacher_forced) {
    require_finite(hidden, "the LLM's hidden states");
    g.stopped_by = StopReason::TeacherForced;
    std::vector<torch::Tensor> rows;
    for (auto row : plan.seg_rows) rows.push_back(hidden[0][row - keep]);
    if (!rows.empty()) g.seg_hidden = at::stack(rows, 0);
    report(trace, "final_hidden_states", hidden);
    if (trace) report(trace, "logits", llama.logits(hidden[0]));
    return g;
  }
  StageClock decode_clock(m.device);
  std::vector<torch::Tensor> seg_rows, step_logits, hiddens;
  if (trace) hiddens.push_back(hidden[0]);
  auto last = hidden[0][-1];
  auto logits = llama.logits(last);
  report(trace, "prefill_last_logits", logits);
  g.stopped_by = StopReason::MaxNewTokens;
  for (int step = 0; step < max_new; ++step) {
    if (control.has_deadline && std::chrono::steady_clock::now() >= control.deadline) {
      g.stopped_by = StopReason::Deadline;
      break;
    }
    require_finite(logits, "the LLM's logits");
    int64_t next = logits.argmax().item<int64_t>();
    if (trace) step_logits.push_back(logits.to(torch::kCPU, torch::kFloat32));
    g.output_ids.push_back(next);
    if (next == m.seg_id) seg_rows.push_back(last.clone());  // `last` may be a graph's output buffer
    if (next == m.cfg.eos_token_id && !q.ignore_eos) {
      g.stopped_by = StopReason::Eos;
      break;
    }
    if (control.stream && !control.stream->push(next)) {
      g.stopped_by = StopReason::Cancelled;
      break;
    }
    if (step + 1 == max_new) break;
    if (st.cache.length >= st.cache.capacity()) {
      g.stopped_by = StopReason::Context;
      break;
    }
    decode_step(m, st, next, last, logits, trace ? &hiddens : nullptr);
    st.seq.push_back(next);
  }
  ms["decode"] = decode_clock.ms();
  g.decode_tokens = int64_t(g.output_ids.size());
  if (!seg_rows.empty()) g.seg_hidden = at::stack(seg_rows, 0);
  if (!step_logits.empty()) report(trace, "step_logits", at::stack(step_logits, 0));
  if (trace) report(trace, "final_hidden_states", at::cat(hiddens, 0).unsqueeze(0));
  return g;
}

}  // namespace reasonseg
