// The C API (include/reasonseg/reasonseg.h) over the C++ one: handles own C++ objects, every
// exception becomes a status code and a thread-local message.
#include "reasonseg/reasonseg.h"

#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "reasonseg/image_io.hpp"
#include "reasonseg/overlay.hpp"
#include "reasonseg/segmenter.hpp"
#include "reasonseg/version.hpp"

struct reasonseg_model {
  reasonseg::ReasoningSegmenter seg;
};
struct reasonseg_image {
  reasonseg::ImageContext ctx;
  cv::Mat bgr;  // the original pixels, for overlays
};
struct reasonseg_result {
  reasonseg::SegmentResult r;
  std::string stop_reason;
};

namespace {

thread_local std::string g_last_error;

struct ArgumentError {
  std::string message;
};

reasonseg_status set_error(reasonseg_status s, const std::string& message) {
  g_last_error = message;
  return s;
}

// Runs `body`, turning every exception into a status; clears the message on success.
template <class F>
reasonseg_status guarded(const char* fn, F&& body) {
  try {
    body();
    g_last_error.clear();
    return REASONSEG_OK;
  } catch (const ArgumentError& e) {
    return set_error(REASONSEG_ERROR_ARGUMENT, std::string(fn) + ": " + e.message);
  } catch (const reasonseg::Error& e) {
    return set_error(REASONSEG_ERROR_INPUT, std::string(fn) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return set_error(REASONSEG_ERROR_INTERNAL, std::string(fn) + ": out of memory");
  } catch (const std::exception& e) {
    return set_error(REASONSEG_ERROR_INTERNAL, std::string(fn) + ": internal error: " + e.what());
  } catch (...) {
    return set_error(REASONSEG_ERROR_INTERNAL, std::string(fn) + ": unknown internal error");
  }
}

void require(bool ok, const char* what) {
  if (!ok) throw ArgumentError{what};
}

std::string str_or(const char* s, const char* def) { return s && *s ? s : def; }

const reasonseg::SegMask& mask_at(const reasonseg_result& result, size_t index) {
  const auto& masks = result.r.masks;
  if (index >= masks.size())
    throw ArgumentError{"index " + std::to_string(index) + " is out of range (" + std::to_string(masks.size()) + " masks)"};
  return masks[index];
}

}  // namespace

extern "C" {

const char* reasonseg_version(void) { return reasonseg::version(); }
const char* reasonseg_last_error(void) { return g_last_error.c_str(); }

reasonseg_model_params reasonseg_model_params_default(void) {
  const reasonseg::SegmenterOptions d;
  reasonseg_model_params p;
  std::memset(&p, 0, sizeof p);
  p.max_new_tokens = d.max_new_tokens;
  p.max_image_pixels = d.max_image_pixels;
  p.check_finite_weights = d.check_finite_weights ? 1 : 0;
  p.progress = 0;
  p.quantize = nullptr;
  p.quantize_group_size = d.quantize_group_size;
  return p;
}

reasonseg_status reasonseg_model_load(const reasonseg_model_params* params, reasonseg_model** out_model) {
  if (out_model) *out_model = nullptr;
  return guarded("reasonseg_model_load", [&] {
    require(params != nullptr, "params is NULL");
    require(out_model != nullptr, "out_model is NULL");
    require(params->max_new_tokens >= 0, "max_new_tokens is negative");
    require(params->max_image_pixels >= 1, "max_image_pixels must be >= 1");
    reasonseg::SegmenterOptions o;
    o.model_dir = str_or(params->model_dir, "");
    o.vision_tower_dir = str_or(params->vision_tower_dir, "");
    o.random_weights = str_or(params->random_weights, "");
    require(!o.model_dir.empty() || !o.random_weights.empty(), "model_dir is NULL or empty (and no random_weights)");
    o.device = reasonseg::parse_device(str_or(params->device, "auto"));
    o.dtype = reasonseg::parse_dtype(str_or(params->dtype, "auto"));
    o.max_new_tokens = params->max_new_tokens;
    o.max_image_pixels = params->max_image_pixels;
    o.check_finite_weights = params->check_finite_weights != 0;
    o.progress = params->progress != 0;
    o.quantize = reasonseg::parse_quantization(str_or(params->quantize, "none"));
    o.quantize_group_size = params->quantize_group_size;
    *out_model = new reasonseg_model{reasonseg::ReasoningSegmenter(o)};
  });
}

void reasonseg_model_free(reasonseg_model* model) { delete model; }

const char* reasonseg_model_family(const reasonseg_model* model) {
  if (!model) return "";
  switch (model->seg.family()) {
    case reasonseg::ModelFamily::Sesame: return "sesame";
    case reasonseg::ModelFamily::LisaPlus: return "lisa++";
    default: return "lisa";
  }
}

reasonseg_status reasonseg_image_encode(const reasonseg_model* model, const uint8_t* pixels, int32_t width,
                                        int32_t height, size_t stride, reasonseg_pixel_format format,
                                        reasonseg_image** out_image) {
  if (out_image) *out_image = nullptr;
  return guarded("reasonseg_image_encode", [&] {
    require(model != nullptr, "model is NULL");
    require(out_image != nullptr, "out_image is NULL");
    require(pixels != nullptr, "pixels is NULL");
    require(width > 0 && height > 0, "width and height must be positive");
    int channels = 0;
    switch (format) {
      case REASONSEG_PIXELS_GRAY: channels = 1; break;
      case REASONSEG_PIXELS_RGB: case REASONSEG_PIXELS_BGR: channels = 3; break;
      case REASONSEG_PIXELS_RGBA: case REASONSEG_PIXELS_BGRA: channels = 4; break;
      default: throw ArgumentError{"format is not a reasonseg_pixel_format"};
    }
    require(stride >= size_t(width) * size_t(channels), "stride is smaller than width * bytes per pixel");
    const cv::Mat view(height, width, CV_8UC(channels), const_cast<uint8_t*>(pixels), stride);
    const bool rgb_order = format == REASONSEG_PIXELS_RGB || format == REASONSEG_PIXELS_RGBA;
    auto img = std::make_unique<reasonseg_image>();
    img->ctx = model->seg.encode_image(view, rgb_order ? reasonseg::ColorOrder::RGB : reasonseg::ColorOrder::BGR);
    // Kept as BGR for overlays (to_rgb validated the pixels; swapping R and B is its own inverse).
    const cv::Mat rgb = reasonseg::to_rgb(view, rgb_order ? reasonseg::ColorOrder::BGR : reasonseg::ColorOrder::RGB);
    img->bgr = rgb;
    *out_image = img.release();
  });
}

reasonseg_status reasonseg_image_load(const reasonseg_model* model, const char* path, reasonseg_image** out_image) {
  if (out_image) *out_image = nullptr;
  return guarded("reasonseg_image_load", [&] {
    require(model != nullptr, "model is NULL");
    require(out_image != nullptr, "out_image is NULL");
    require(path != nullptr && *path, "path is NULL or empty");
    auto img = std::make_unique<reasonseg_image>();
    img->bgr = reasonseg::read_image_file(path, true);
    img->ctx = model->seg.encode_image(img->bgr, reasonseg::ColorOrder::BGR);
    *out_image = img.release();
  });
}

void reasonseg_image_free(reasonseg_image* image) { delete image; }
int32_t reasonseg_image_width(const reasonseg_image* image) { return image ? image->ctx.width() : 0; }
int32_t reasonseg_image_height(const reasonseg_image* image) { return image ? image->ctx.height() : 0; }
size_t reasonseg_image_history_length(const reasonseg_image* image) { return image ? image->ctx.history().size() : 0; }

reasonseg_status reasonseg_image_truncate_history(reasonseg_image* image, size_t turns) {
  return guarded("reasonseg_image_truncate_history", [&] {
    require(image != nullptr, "image is NULL");
    image->ctx.truncate_history(turns);
  });
}

reasonseg_query_params reasonseg_query_params_default(void) {
  reasonseg_query_params p;
  std::memset(&p, 0, sizeof p);
  p.max_new_tokens = -1;
  return p;
}

reasonseg_status reasonseg_segment(const reasonseg_model* model, reasonseg_image* image, const char* instruction,
                                   const reasonseg_query_params* params, reasonseg_result** out_result) {
  if (out_result) *out_result = nullptr;
  return guarded("reasonseg_segment", [&] {
    require(model != nullptr, "model is NULL");
    require(image != nullptr, "image is NULL");
    require(instruction != nullptr, "instruction is NULL");
    require(out_result != nullptr, "out_result is NULL");
    const reasonseg_query_params p = params ? *params : reasonseg_query_params_default();
    require(p.max_new_tokens >= -1, "max_new_tokens must be >= -1");
    require(std::isfinite(p.timeout_ms) && p.timeout_ms >= 0, "timeout_ms must be finite and >= 0");
    reasonseg::QueryOptions q;
    q.max_new_tokens = p.max_new_tokens;
    q.continue_conversation = p.continue_conversation != 0;
    q.timeout_ms = p.timeout_ms;
    if (p.on_text) {
      q.on_text = [cb = p.on_text, user = p.user_data](const std::string& piece) {
        return cb(piece.data(), piece.size(), user) == 0;
      };
    }
    auto res = std::make_unique<reasonseg_result>();
    res->r = model->seg.segment(image->ctx, instruction, q);
    res->stop_reason = reasonseg::to_string(res->r.stopped_by);
    *out_result = res.release();
  });
}

void reasonseg_result_free(reasonseg_result* result) { delete result; }
const char* reasonseg_result_text(const reasonseg_result* result) { return result ? result->r.text.c_str() : ""; }
const char* reasonseg_result_stop_reason(const reasonseg_result* result) {
  return result ? result->stop_reason.c_str() : "";
}
int32_t reasonseg_result_has_target(const reasonseg_result* result) { return result && result->r.has_target() ? 1 : 0; }
size_t reasonseg_result_mask_count(const reasonseg_result* result) { return result ? result->r.masks.size() : 0; }

reasonseg_status reasonseg_result_mask(const reasonseg_result* result, size_t index, reasonseg_mask* out_mask) {
  return guarded("reasonseg_result_mask", [&] {
    require(result != nullptr, "result is NULL");
    require(out_mask != nullptr, "out_mask is NULL");
    const auto& m = mask_at(*result, index);
    out_mask->data = m.mask.data;
    out_mask->width = m.mask.cols;
    out_mask->height = m.mask.rows;
    out_mask->stride = m.mask.step[0];
    out_mask->score = m.score;
    out_mask->area = m.area;
    out_mask->bbox[0] = m.bbox.x;
    out_mask->bbox[1] = m.bbox.y;
    out_mask->bbox[2] = m.bbox.width;
    out_mask->bbox[3] = m.bbox.height;
  });
}

reasonseg_status reasonseg_result_timing(const reasonseg_result* result, const char* stage, double* out_ms) {
  return guarded("reasonseg_result_timing", [&] {
    require(result != nullptr, "result is NULL");
    require(stage != nullptr, "stage is NULL");
    require(out_ms != nullptr, "out_ms is NULL");
    auto it = result->r.timings_ms.find(stage);
    if (it == result->r.timings_ms.end()) throw ArgumentError{std::string("no timing for stage '") + stage + "'"};
    *out_ms = it->second;
  });
}

size_t reasonseg_result_output_ids(const reasonseg_result* result, int64_t* ids, size_t capacity) {
  if (!result) return 0;
  const auto& v = result->r.output_ids;
  if (ids)
    for (size_t i = 0; i < v.size() && i < capacity; ++i) ids[i] = v[i];
  return v.size();
}

reasonseg_status reasonseg_write_overlay(const reasonseg_image* image, const reasonseg_result* result, const char* path) {
  return guarded("reasonseg_write_overlay", [&] {
    require(image != nullptr, "image is NULL");
    require(result != nullptr, "result is NULL");
    require(path != nullptr && *path, "path is NULL or empty");
    for (const auto& m : result->r.masks)
      require(m.mask.rows == image->bgr.rows && m.mask.cols == image->bgr.cols, "the result is not about this image");
    reasonseg::write_image_file(path, reasonseg::draw_overlay(image->bgr, reasonseg::ColorOrder::BGR, result->r, result->r.text));
  });
}

reasonseg_status reasonseg_write_mask(const reasonseg_result* result, size_t index, const char* path) {
  return guarded("reasonseg_write_mask", [&] {
    require(result != nullptr, "result is NULL");
    require(path != nullptr && *path, "path is NULL or empty");
    reasonseg::write_image_file(path, mask_at(*result, index).mask);
  });
}

}  // extern "C"
