#include "reasonseg/segmenter.hpp"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <malloc.h>

#include <algorithm>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "config/config.hpp"
#include "image/preprocess.hpp"
#include "io/checkpoint.hpp"
#include "models/lisa_model.hpp"
#include "models/llama_graph_decoder.hpp"
#include "nn/cuda_support.hpp"
#include "reasonseg/tokenizer.hpp"
#include "util/error.hpp"
#include "util/progress.hpp"

namespace fs = std::filesystem;

#ifndef REASONSEG_DEFAULT_TOKENIZER
#define REASONSEG_DEFAULT_TOKENIZER ""
#endif

namespace reasonseg {

namespace {

using Clock = std::chrono::steady_clock;

bool cpu_has_native_bf16() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("flags", 0) == 0)
      return line.find(" amx_bf16") != std::string::npos || line.find(" avx512_bf16") != std::string::npos;
  return false;
}

}  // namespace

// ---- per-image state ------------------------------------------------------------------------

struct ImageContext::State {
  cv::Mat rgb;
  torch::Tensor clip_features;  // [N_img, H] projected, run dtype, on device
  torch::Tensor sam_embedding;  // [1, C, E, E]
  SamInput sam_input;           // resized size (pixels dropped after encoding)
  KVCache cache;
  std::vector<int64_t> seq;     // expanded token sequence whose keys/values the cache holds
  std::unique_ptr<LlamaGraphDecoder> graph_decoder;  // CUDA graphs of decoding steps over `cache`
  std::unique_ptr<SideWork> sam_work;                // SAM encoder in flight on a second stream
};

ImageContext::ImageContext() = default;
ImageContext::~ImageContext() = default;
ImageContext::ImageContext(ImageContext&&) noexcept = default;
ImageContext& ImageContext::operator=(ImageContext&&) noexcept = default;
int ImageContext::width() const { return state_ ? state_->rgb.cols : 0; }
int ImageContext::height() const { return state_ ? state_->rgb.rows : 0; }

// ---- the model --------------------------------------------------------------------------------

struct ReasoningSegmenter::Impl {
  SegmenterOptions opt;
  LisaConfig cfg;
  std::unique_ptr<Tokenizer> tok;
  std::unique_ptr<LisaModel> model;
  std::unique_ptr<ClipVisionTower> clip;
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
  DType dtype_enum = DType::Float32;
  ConvTemplate tpl = ConvTemplate::LlavaV1;
  int seg_id = -1;
  double load_s = 0;

  // Keys/values of the text before the image (system prompt, "USER:"), the same for every
  // instruction and every image: the first query computes them, later first queries on new
  // images copy them instead of running them again (35 of LISA-7B's 311 prompt positions).
  struct PrefixKV {
    std::vector<int64_t> seq;
    KVCache kv;  // exactly seq.size() positions
  };
  mutable std::mutex prefix_mutex;
  mutable std::shared_ptr<const PrefixKV> prefix_kv;
  std::shared_ptr<const PrefixKV> text_prefix(const ImageContext::State& st, const std::vector<int64_t>& seq) const;

  // Stage timings wait for the current stream only: SAM's encoder may be running on another.
  void sync() const { sync_current_stream(device); }
  double ms_since(Clock::time_point t0) const {
    sync();
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  }

  void load();
  void ensure_clip(ImageContext::State& st, TensorTrace* trace, std::map<std::string, double>& tm) const;
  void ensure_sam(ImageContext::State& st, TensorTrace* trace, std::map<std::string, double>& tm) const;
  void start_sam_on_side_stream(ImageContext::State& st) const;
  void decode_step(ImageContext::State& st, int64_t token, torch::Tensor& last, torch::Tensor& logits,
                   std::vector<torch::Tensor>* hiddens) const;
  SegmentResult run(ImageContext& ctx, const std::string& text, const std::string* answer, const QueryOptions& q,
                    TensorTrace* trace) const;
  void decode_masks(ImageContext::State& st, const torch::Tensor& text_embeds, const QueryOptions& q,
                    SegmentResult& r, TensorTrace* trace) const;
  torch::Tensor embed_sequence(const ImageContext::State& st, const std::vector<int64_t>& seq, size_t from) const;
};

void ReasoningSegmenter::Impl::load() {
  auto t0 = Clock::now();
  // Device and dtype.
  Device dev = opt.device;
  if (dev == Device::Auto) dev = torch::cuda::is_available() ? Device::CUDA : Device::CPU;
  if (dev == Device::CUDA && !torch::cuda::is_available())
    fail("--device cuda: this LibTorch build or machine has no CUDA device");
  device = dev == Device::CUDA ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  dtype_enum = opt.dtype;
  if (dtype_enum == DType::Auto)
    dtype_enum = (device.is_cuda() || cpu_has_native_bf16()) ? DType::BFloat16 : DType::Float32;
  if (dtype_enum == DType::Float16 && device.is_cpu())
    fail("--dtype fp16 is supported on CUDA only (use bf16 or fp32 on CPU)");
  dtype = dtype_enum == DType::BFloat16 ? torch::kBFloat16 : dtype_enum == DType::Float16 ? torch::kFloat16 : torch::kFloat32;
  if (opt.threads < 0) fail("--threads must be >= 0 (got ", opt.threads, ")");
  if (opt.tune_process) {
    // Large temporaries (attention scores, activations) are freed and re-allocated every
    // layer; by default glibc returns them to the kernel and every reuse page-faults again
    // (measured: a bf16 softmax 20x slower). Keep freed blocks in the heap instead.
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    // fp32 runs through OpenBLAS's own threads: idle OpenMP workers that spin steal their cores
    // (an fp32 query measured 39 s instead of 22-24 s). bf16 runs through oneDNN and the
    // OpenMP pool only, where spinning workers answer the next small op faster.
    if (dtype == torch::kFloat32 && device.is_cpu()) setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  }
  at::set_num_threads(opt.threads > 0 ? opt.threads : int(std::max(1u, std::thread::hardware_concurrency())));
  if (opt.max_new_tokens < 0) fail("max_new_tokens must be >= 0 (got ", opt.max_new_tokens, ")");
  tpl = parse_conv_template(opt.conv_template);

  std::unique_ptr<TensorSource> src, tower_src;
  std::string tower_prefix = "vision_model.";
  if (!opt.random_weights.empty()) {
    cfg = preset_config(opt.random_weights);
    std::string tokdir = opt.model_dir;
    if (!tokdir.empty() && fs::exists(fs::path(tokdir) / "tokenizer.model")) {
      tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(tokdir));
    } else {
      std::string sp = REASONSEG_DEFAULT_TOKENIZER;
      if (sp.empty() || !fs::exists(sp))
        fail("--random-weights: no tokenizer.model found; pass --model DIR holding one");
      tok = std::make_unique<Tokenizer>(sp, preset_added_tokens(cfg));
    }
  } else {
    if (opt.model_dir.empty()) fail("--model: no model directory given");
    if (!fs::is_directory(opt.model_dir)) fail(opt.model_dir, ": model directory does not exist");
    cfg = read_lisa_config(opt.model_dir);
    tok = std::make_unique<Tokenizer>(Tokenizer::from_dir(opt.model_dir));
    src = std::make_unique<TensorSource>(TensorSource::open_dir(opt.model_dir));
    // The CLIP tower: explicit option, then the config's path, then weights embedded in the checkpoint.
    std::string tower = opt.vision_tower_dir;
    if (tower.empty() && !cfg.vision_tower.empty()) {
      auto p = fs::path(cfg.vision_tower).is_absolute() ? fs::path(cfg.vision_tower) : fs::path(opt.model_dir) / cfg.vision_tower;
      if (fs::is_directory(p)) tower = p.string();
    }
    const std::string embedded = "model.vision_tower.vision_tower.vision_model.";
    if (!tower.empty()) {
      if (!fs::is_directory(tower)) fail("--vision-tower: '", tower, "' is not a directory");
      read_clip_tower_config(tower, cfg);
      tower_src = std::make_unique<TensorSource>(TensorSource::open_dir(tower));
    } else if (cfg.has_vision_config && src->contains(embedded + "embeddings.class_embedding")) {
      tower_prefix = embedded;
    } else {
      fail(opt.model_dir, ": the CLIP vision tower '", cfg.vision_tower,
           "' was not found. Released LISA checkpoints do not contain it: download the Hugging Face repo '",
           cfg.vision_tower.empty() ? "openai/clip-vit-large-patch14" : cfg.vision_tower,
           "' (config.json, preprocessor_config.json, pytorch_model.bin or model.safetensors) and pass its directory "
           "with --vision-tower DIR (SegmenterOptions::vision_tower_dir)");
    }
  }
  if (cfg.mm_hidden_size != cfg.vision.hidden_size)
    fail(cfg.source, ": mm_hidden_size ", cfg.mm_hidden_size, " differs from the vision tower width ", cfg.vision.hidden_size);
  if (cfg.out_dim != cfg.sam.prompt_embed_dim)
    fail(cfg.source, ": out_dim ", cfg.out_dim, " must equal SAM's prompt_embed_dim ", cfg.sam.prompt_embed_dim);
  seg_id = tok->added_token_id("[SEG]");
  if (cfg.mm_use_im_start_end) {
    tok->added_token_id("<im_start>");
    tok->added_token_id("<im_end>");
  }
  for (auto& [t, id] : tok->added_tokens())
    if (id >= cfg.llm.vocab_size)
      fail(cfg.source, ": added token '", t, "' has id ", id, " outside vocab_size ", cfg.llm.vocab_size);

  model = std::make_unique<LisaModel>(cfg);
  clip = std::make_unique<ClipVisionTower>(cfg.vision, cfg.clip_layers_needed());
  int64_t total = module_bytes(*model, dtype) + module_bytes(*clip, dtype);
  ProgressBar bar(opt.random_weights.empty() ? "loading" : "random weights", total, true, opt.progress);
  LoadSettings ls;
  ls.dtype = dtype;
  ls.device = device;
  ls.zero_copy = opt.zero_copy_weights;
  ls.on_bytes = [&](int64_t n) { bar.advance(n); };
  if (!opt.random_weights.empty()) {
    randomize_module(*model, ls, 1234);
    randomize_module(*clip, ls, 4321);
  } else {
    load_module(*model, "", *src, ls);
    load_module(*clip, tower_prefix, tower_src ? *tower_src : *src, ls);
  }
  bar.finish();
  load_s = std::chrono::duration<double>(Clock::now() - t0).count();
}

void ReasoningSegmenter::Impl::ensure_clip(ImageContext::State& st, TensorTrace* trace,
                                           std::map<std::string, double>& tm) const {
  if (st.clip_features.defined() && !trace) return;
  auto t0 = Clock::now();
  auto pixels = clip_preprocess(st.rgb, cfg.clip_preprocess);
  std::vector<torch::Tensor> all;
  auto hs = clip->forward(pixels.to(device, dtype), trace ? &all : nullptr);
  auto feats = cfg.mm_vision_select_feature == "patch" ? hs.narrow(1, 1, hs.size(1) - 1) : hs;
  auto proj = model->projector.forward(feats);
  st.clip_features = proj[0];
  if (trace) {
    (*trace)["clip_pixel_values"] = pixels;
    (*trace)["clip_hidden_states"] = at::cat(all, 0).to(torch::kCPU, torch::kFloat32);
    (*trace)["vision_tower_features"] = feats.to(torch::kCPU, torch::kFloat32);
    (*trace)["mm_projector_out"] = proj.to(torch::kCPU, torch::kFloat32);
  }
  tm["clip"] += ms_since(t0);
}

void ReasoningSegmenter::Impl::ensure_sam(ImageContext::State& st, TensorTrace* trace,
                                          std::map<std::string, double>& tm) const {
  if (st.sam_work) {  // started on a second stream by this or an earlier query
    st.sam_work->join({st.sam_embedding});
    tm["sam_encoder"] += st.sam_work->elapsed_ms();
    st.sam_work.reset();
  }
  if (st.sam_embedding.defined() && !trace) return;
  auto t0 = Clock::now();
  st.sam_input = sam_preprocess(st.rgb, cfg.sam);
  st.sam_embedding = model->sam.image_encoder.forward(st.sam_input.pixels.to(device, dtype));
  if (trace) {
    (*trace)["sam_input"] = st.sam_input.pixels;
    (*trace)["sam_image_embeddings"] = st.sam_embedding.to(torch::kCPU, torch::kFloat32);
  }
  st.sam_input.pixels = torch::Tensor();
  tm["sam_encoder"] += ms_since(t0);
}

void ReasoningSegmenter::Impl::start_sam_on_side_stream(ImageContext::State& st) const {
  st.sam_input = sam_preprocess(st.rgb, cfg.sam);
  auto pixels = st.sam_input.pixels.to(device, dtype);
  st.sam_input.pixels = torch::Tensor();
  st.sam_work = run_on_side_stream(device, {pixels}, [&] { st.sam_embedding = model->sam.image_encoder.forward(pixels); });
}

// One decoding step: `token` at the next cache position; `last` and `logits` receive its final
// hidden state [H] and logits. On CUDA a replayed graph (its outputs are overwritten by the next
// step: keep copies), elsewhere plain launches.
void ReasoningSegmenter::Impl::decode_step(ImageContext::State& st, int64_t token, torch::Tensor& last,
                                           torch::Tensor& logits, std::vector<torch::Tensor>* hiddens) const {
  if (device.is_cuda() && opt.cuda_graphs && cuda_support_compiled()) {
    if (!st.graph_decoder || !st.graph_decoder->serves(st.cache))
      st.graph_decoder = std::make_unique<LlamaGraphDecoder>(model->llama, st.cache);
    st.graph_decoder->step(token, last, logits);
    if (hiddens) hiddens->push_back(last.unsqueeze(0).clone());
    return;
  }
  auto h = model->llama.forward(model->llama.embed(torch::tensor({token}, torch::kLong)), st.cache);
  if (hiddens) hiddens->push_back(h[0]);
  last = h[0][-1];
  logits = model->llama.logits(last);
}

std::shared_ptr<const ReasoningSegmenter::Impl::PrefixKV> ReasoningSegmenter::Impl::text_prefix(
    const ImageContext::State& st, const std::vector<int64_t>& seq) const {
  const auto image_at = std::find_if(seq.begin(), seq.end(), [](int64_t id) { return id < 0; });
  const int64_t len = image_at - seq.begin();
  if (image_at == seq.end() || len < 2) return nullptr;
  std::lock_guard<std::mutex> lock(prefix_mutex);  // one thread computes it, the others wait
  if (!prefix_kv) {
    auto pre = std::make_shared<PrefixKV>();
    pre->seq.assign(seq.begin(), image_at);
    pre->kv = model->llama.new_cache(len, dtype, device);
    model->llama.forward(embed_sequence(st, pre->seq, 0), pre->kv);
    prefix_kv = std::move(pre);
  }
  // A prompt whose text before the image differs (not produced by this model's template) runs in full.
  if (prefix_kv->seq.size() != size_t(len) || !std::equal(prefix_kv->seq.begin(), prefix_kv->seq.end(), seq.begin()))
    return nullptr;
  return prefix_kv;
}

// Embeddings of seq[from:]: token ids through embed_tokens, image markers from the CLIP features.
torch::Tensor ReasoningSegmenter::Impl::embed_sequence(const ImageContext::State& st, const std::vector<int64_t>& seq,
                                                       size_t from) const {
  std::vector<torch::Tensor> parts;
  size_t i = from;
  while (i < seq.size()) {
    size_t j = i;
    if (seq[i] >= 0) {
      while (j < seq.size() && seq[j] >= 0) ++j;
      std::vector<int64_t> ids(seq.begin() + i, seq.begin() + j);
      parts.push_back(model->llama.embed(torch::tensor(ids, torch::kLong))[0]);
    } else {
      while (j < seq.size() && seq[j] < 0) ++j;
      int64_t first = -(seq[i] + 1000);
      parts.push_back(st.clip_features.narrow(0, first, int64_t(j - i)));
    }
    i = j;
  }
  return at::cat(parts, 0).unsqueeze(0);
}

void ReasoningSegmenter::Impl::decode_masks(ImageContext::State& st, const torch::Tensor& text_embeds,
                                            const QueryOptions& q, SegmentResult& r, TensorTrace* trace) const {
  ensure_sam(st, trace, r.timings_ms);
  auto t0 = Clock::now();
  const int H = st.rgb.rows, W = st.rgb.cols;
  // Prompts given in original pixels move to the resized SAM frame (ResizeLongestSide.apply_coords).
  const float sx = float(st.sam_input.resized_w) / W, sy = float(st.sam_input.resized_h) / H;
  std::vector<SamPoint> pts;
  for (auto& p : q.points) {
    if (p.label != 0 && p.label != 1) fail("point prompt label must be 0 or 1 (got ", p.label, ")");
    pts.push_back({p.x * sx, p.y * sy, p.label});
  }
  SamBox box{};
  if (q.box) box = {q.box->x0 * sx, q.box->y0 * sy, q.box->x1 * sx, q.box->y1 * sy};
  auto& sam = model->sam;
  auto sparse = sam.prompt_encoder.sparse(pts, q.box ? &box : nullptr,
                                          text_embeds.defined() ? text_embeds.unsqueeze(1) : text_embeds);
  sparse = sparse.to(st.sam_embedding.scalar_type());
  const int64_t n = sparse.size(0);
  auto out = sam.mask_decoder.forward(st.sam_embedding, sam.prompt_encoder.dense_pe(), sparse,
                                      sam.prompt_encoder.dense_no_mask(n));
  r.timings_ms["mask_decoder"] += ms_since(t0);
  auto t1 = Clock::now();
  // LISA's postprocess_masks: fp32, bilinear to the input square, crop the padding, bilinear
  // to the original size, threshold at 0.
  auto low = out.masks.to(torch::kFloat32);
  const int64_t S = cfg.sam.image_size;
  auto m = at::upsample_bilinear2d(low, {S, S}, false);
  m = m.narrow(2, 0, st.sam_input.resized_h).narrow(3, 0, st.sam_input.resized_w);
  m = at::upsample_bilinear2d(m, {H, W}, false).select(1, 0).to(torch::kCPU).contiguous();
  auto bin = m.gt(0).to(torch::kUInt8).contiguous();
  auto iou = out.iou.to(torch::kCPU, torch::kFloat32);
  for (int64_t i = 0; i < n; ++i) {
    SegMask sm;
    cv::Mat b(H, W, CV_8U, bin[i].data_ptr<uint8_t>());
    sm.mask = b * 255;
    sm.area = cv::countNonZero(b);
    if (sm.area) sm.bbox = cv::boundingRect(b);
    sm.score = iou[i][0].item<float>();
    if (q.keep_logits) sm.logits = cv::Mat(H, W, CV_32F, m[i].data_ptr<float>()).clone();
    r.masks.push_back(std::move(sm));
  }
  if (trace) {
    (*trace)["sam_sparse_embeddings"] = sparse.to(torch::kCPU, torch::kFloat32);
    (*trace)["low_res_masks"] = low.to(torch::kCPU);
    (*trace)["iou_predictions"] = iou;
    (*trace)["mask_logits"] = m;
    (*trace)["mask_binary"] = bin;
  }
  r.timings_ms["postprocess"] += ms_since(t1);
}

SegmentResult ReasoningSegmenter::Impl::run(ImageContext& ctx, const std::string& text, const std::string* answer,
                                            const QueryOptions& q, TensorTrace* trace) const {
  if (!ctx.state_) fail("segment: the ImageContext is empty (create it with encode_image)");
  auto& st = *ctx.state_;
  torch::NoGradGuard no_grad;
  SegmentResult r;
  auto t_total = Clock::now();
  auto t0 = Clock::now();
  Prompt p = build_prompt(tpl, text, cfg.mm_use_im_start_end, answer);
  r.input_ids = tokenize_prompt(*tok, p, opt.allow_special_tokens_in_prompt);
  int images = 0;
  for (auto id : r.input_ids) images += id == kImageTokenIndex;
  if (images != 1) fail("instruction: the prompt must hold exactly one <image> (found ", images, ")");
  const int n_img = cfg.image_tokens();
  std::vector<int64_t> seq;  // expanded: image positions are -(1000 + patch index)
  std::vector<int64_t> row_of(r.input_ids.size());
  for (size_t k = 0; k < r.input_ids.size(); ++k) {
    row_of[k] = int64_t(seq.size());
    if (r.input_ids[k] == kImageTokenIndex)
      for (int i = 0; i < n_img; ++i) seq.push_back(-(1000 + i));
    else seq.push_back(r.input_ids[k]);
  }
  const int64_t T0 = int64_t(seq.size()), max_pos = cfg.llm.max_position_embeddings;
  if (T0 > max_pos)
    fail("instruction: the prompt needs ", T0, " positions but the model's context is ", max_pos);
  const int max_new = answer ? 0 : (q.max_new_tokens >= 0 ? q.max_new_tokens : opt.max_new_tokens);
  r.timings_ms["tokenize"] = ms_since(t0);

  ensure_clip(st, trace, r.timings_ms);
  // On CUDA, SAM's encoder (needed by the mask decoder at the end) overlaps the LLM prefill.
  if (device.is_cuda() && opt.overlap_sam_encoder && !trace && !st.sam_embedding.defined() && !st.sam_work)
    start_sam_on_side_stream(st);

  // Rows of the hidden states needed for teacher-forced [SEG]s (the token before each [SEG]).
  std::vector<int64_t> tf_rows;
  if (answer)
    for (size_t k = 0; k + 1 < r.input_ids.size(); ++k)
      if (r.input_ids[k + 1] == seg_id) tf_rows.push_back(row_of[k]);

  // Key/value cache: keep the longest prefix shared with what the cache already holds.
  int64_t keep = 0;
  if (!trace) {
    while (keep < int64_t(st.seq.size()) && keep < T0 && st.seq[keep] == seq[keep]) ++keep;
    keep = std::min(keep, T0 - 1);
    if (!tf_rows.empty()) keep = std::min(keep, tf_rows.front());
  }
  auto t1 = Clock::now();
  // A new image: the text before it comes from the model's shared prefix cache. Traced runs
  // (parity tests) compute every position as the reference does.
  std::shared_ptr<const PrefixKV> pre;
  if (!trace) {
    pre = text_prefix(st, seq);
    const int64_t len = pre ? pre->kv.length : 0;
    if (pre && (keep >= len || len > T0 - 1 || (!tf_rows.empty() && len > tf_rows.front()))) pre.reset();
  }
  const int64_t need = std::min<int64_t>(max_pos, T0 + max_new);
  if (st.cache.capacity() < need) {
    KVCache c = model->llama.new_cache(std::min<int64_t>(max_pos, (need + 255) / 256 * 256), dtype, device);
    if (!pre) copy_positions(c, st.cache, keep);  // with a prefix, the prefix replaces these positions
    st.cache = std::move(c);
  }
  if (pre) {
    keep = pre->kv.length;
    copy_positions(st.cache, pre->kv, keep);
  }
  st.cache.length = keep;
  st.seq.assign(seq.begin(), seq.begin() + keep);

  auto embeds = embed_sequence(st, seq, size_t(keep));
  auto hidden = model->llama.forward(embeds, st.cache);
  st.seq = seq;
  r.timings_ms["prefill"] = ms_since(t1);
  r.timings_ms["prefill_tokens"] = double(T0 - keep);
  if (trace) (*trace)["llm_inputs_embeds"] = embeds.to(torch::kCPU, torch::kFloat32);

  torch::Tensor seg_hidden;
  if (answer) {
    r.stopped_by = "teacher_forced";
    auto prompt_only = tokenize_prompt(*tok, build_prompt(tpl, text, cfg.mm_use_im_start_end), opt.allow_special_tokens_in_prompt);
    r.output_ids.assign(r.input_ids.begin() + std::min(prompt_only.size(), r.input_ids.size()), r.input_ids.end());
    std::vector<torch::Tensor> rows;
    for (auto row : tf_rows) rows.push_back(hidden[0][row - keep]);
    if (!rows.empty()) seg_hidden = at::stack(rows, 0);
    if (trace) {
      (*trace)["final_hidden_states"] = hidden.to(torch::kCPU, torch::kFloat32);
      (*trace)["logits"] = model->llama.logits(hidden[0]).to(torch::kCPU, torch::kFloat32);
    }
  } else {
    auto t2 = Clock::now();
    std::vector<torch::Tensor> seg_rows, step_logits, hiddens;
    if (trace) hiddens.push_back(hidden[0]);
    auto last = hidden[0][-1];
    auto logits = model->llama.logits(last);
    if (trace) (*trace)["prefill_last_logits"] = logits.to(torch::kCPU, torch::kFloat32);
    r.stopped_by = "max_new_tokens";
    const int eos = cfg.eos_token_id;
    for (int step = 0; step < max_new; ++step) {
      int64_t next = logits.argmax().item<int64_t>();
      if (trace) step_logits.push_back(logits.to(torch::kCPU, torch::kFloat32));
      r.output_ids.push_back(next);
      if (next == seg_id) seg_rows.push_back(last.clone());  // `last` may be a graph's output buffer
      if (next == eos && !q.ignore_eos) {
        r.stopped_by = "eos";
        break;
      }
      if (step + 1 == max_new) break;
      if (st.cache.length >= st.cache.capacity()) {
        r.stopped_by = "context";
        break;
      }
      decode_step(st, next, last, logits, trace ? &hiddens : nullptr);
      st.seq.push_back(next);
    }
    r.timings_ms["decode"] = ms_since(t2);
    r.timings_ms["decode_tokens"] = double(r.output_ids.size());
    if (!seg_rows.empty()) seg_hidden = at::stack(seg_rows, 0);
    if (trace) {
      if (!step_logits.empty()) (*trace)["step_logits"] = at::stack(step_logits, 0);
      (*trace)["final_hidden_states"] = at::cat(hiddens, 0).unsqueeze(0).to(torch::kCPU, torch::kFloat32);
    }
  }
  std::vector<int64_t> all(r.input_ids);
  if (!answer) all.insert(all.end(), r.output_ids.begin(), r.output_ids.end());
  r.text = chat_cleanup(tok->decode(r.output_ids));
  r.chat_text = chat_cleanup(tok->decode(all));

  if (seg_hidden.defined()) {
    auto t3 = Clock::now();
    auto seg_emb = model->text_hidden_fcs.forward(seg_hidden);
    r.timings_ms["text_hidden_fcs"] = ms_since(t3);
    if (trace) {
      (*trace)["seg_hidden_states"] = seg_hidden.to(torch::kCPU, torch::kFloat32);
      (*trace)["seg_embeddings"] = seg_emb.to(torch::kCPU, torch::kFloat32);
    }
    decode_masks(st, seg_emb, q, r, trace);
  } else if (trace) {
    ensure_sam(st, trace, r.timings_ms);  // the reference encodes the image for SAM even without [SEG]
  }
  r.timings_ms["total"] = ms_since(t_total);
  return r;
}

// ---- public API ---------------------------------------------------------------------------------

ReasoningSegmenter::ReasoningSegmenter(const SegmenterOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->opt = options;
  impl_->load();
}
ReasoningSegmenter::~ReasoningSegmenter() = default;
ReasoningSegmenter::ReasoningSegmenter(ReasoningSegmenter&&) noexcept = default;

ImageContext ReasoningSegmenter::encode_image(const cv::Mat& image, ColorOrder order) const {
  ImageContext ctx;
  ctx.state_ = std::make_unique<ImageContext::State>();
  ctx.state_->rgb = to_rgb(image, order, "image");
  return ctx;
}

SegmentResult ReasoningSegmenter::segment(ImageContext& ctx, const std::string& instruction, const QueryOptions& q,
                                          TensorTrace* trace) const {
  return impl_->run(ctx, instruction, nullptr, q, trace);
}

SegmentResult ReasoningSegmenter::segment(const cv::Mat& image, const std::string& instruction, ColorOrder order,
                                          const QueryOptions& q) const {
  auto ctx = encode_image(image, order);
  return segment(ctx, instruction, q);
}

SegmentResult ReasoningSegmenter::segment_teacher_forced(ImageContext& ctx, const std::string& question,
                                                         const std::string& answer, const QueryOptions& q,
                                                         TensorTrace* trace) const {
  return impl_->run(ctx, question, &answer, q, trace);
}

SegmentResult ReasoningSegmenter::segment_prompts(ImageContext& ctx, const std::vector<PointPrompt>& points,
                                                  const BoxPrompt* box) const {
  if (!ctx.state_) fail("segment_prompts: the ImageContext is empty (create it with encode_image)");
  if (points.empty() && !box) fail("segment_prompts: give at least one point or a box");
  torch::NoGradGuard no_grad;
  SegmentResult r;
  r.stopped_by = "prompts";
  QueryOptions q;
  q.points = points;
  if (box) q.box = *box;
  impl_->decode_masks(*ctx.state_, torch::Tensor(), q, r, nullptr);
  return r;
}

std::string ReasoningSegmenter::prompt_text(const std::string& instruction) const {
  return build_prompt(impl_->tpl, instruction, impl_->cfg.mm_use_im_start_end).text;
}

std::vector<int64_t> ReasoningSegmenter::prompt_ids(const std::string& instruction) const {
  return tokenize_prompt(*impl_->tok, build_prompt(impl_->tpl, instruction, impl_->cfg.mm_use_im_start_end),
                         impl_->opt.allow_special_tokens_in_prompt);
}

Device ReasoningSegmenter::device() const { return impl_->device.is_cuda() ? Device::CUDA : Device::CPU; }
DType ReasoningSegmenter::dtype() const { return impl_->dtype_enum; }
int ReasoningSegmenter::seg_token_id() const { return impl_->seg_id; }
double ReasoningSegmenter::load_seconds() const { return impl_->load_s; }

int64_t ReasoningSegmenter::weight_bytes() const {
  return module_bytes(*impl_->model, impl_->dtype) + module_bytes(*impl_->clip, impl_->dtype);
}

int64_t ReasoningSegmenter::decode_weight_bytes() const {
  const auto& c = impl_->cfg.llm;
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim();
  const int64_t per_layer = H * c.num_attention_heads * hd * 2 + H * c.num_key_value_heads * hd * 2 + 3 * H * I + 2 * H;
  const int64_t elems = per_layer * c.num_hidden_layers + H + int64_t(c.vocab_size) * H + H;  // + lm_head + embed row
  return elems * int64_t(c10::elementSize(impl_->dtype));
}

}  // namespace reasonseg
