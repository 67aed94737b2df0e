// The whole LISA network: root of the checkpoint key tree ("model.*", "lm_head.*").
#pragma once
#include <memory>

#include "config/config.hpp"
#include "models/clip_vision.hpp"
#include "models/llama.hpp"
#include "models/projector.hpp"
#include "models/sam_image_encoder.hpp"
#include "models/sam_mask_decoder.hpp"
#include "models/sam_prompt_encoder.hpp"
#include "models/text_hidden_fcs.hpp"

namespace reasonseg {

// SAM as LISA holds it under "model.visual_model.": image_encoder, prompt_encoder, mask_decoder.
struct Sam : Module {
  explicit Sam(const SamConfig& c) : image_encoder(c), prompt_encoder(c), mask_decoder(c) {
    child("image_encoder", image_encoder);
    child("prompt_encoder", prompt_encoder);
    child("mask_decoder", mask_decoder);
  }
  SamImageEncoder image_encoder;
  SamPromptEncoder prompt_encoder;
  SamMaskDecoder mask_decoder;
};

// Key map: model.embed_tokens / model.layers.N / model.norm / lm_head -> Llama (llama.cpp);
// model.mm_projector -> Projector; model.text_hidden_fcs -> TextHiddenFcs;
// model.visual_model.* -> Sam. The CLIP tower is a separate root (vision_model.*).
class LisaModel : public Module {
 public:
  explicit LisaModel(const LisaConfig& c)
      : cfg(c),
        llama(*this, c.llm),
        projector(*this, "model.mm_projector", c.mm_projector_type, c.mm_hidden_size, c.llm.hidden_size),
        text_hidden_fcs(*this, "model.text_hidden_fcs", c.llm.hidden_size, c.out_dim),
        sam(c.sam) {
    child("model.visual_model", sam);
  }
  LisaConfig cfg;
  Llama llama;
  Projector projector;
  TextHiddenFcs text_hidden_fcs;
  Sam sam;
};

}  // namespace reasonseg
