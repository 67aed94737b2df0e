// Umbrella header of reasonseg.
#pragma once
#include "reasonseg/error.hpp"
#include "reasonseg/eval.hpp"  // evaluation metrics
#include "reasonseg/image.hpp"
#include "reasonseg/image_io.hpp"
#include "reasonseg/options.hpp"
#include "reasonseg/overlay.hpp"
#include "reasonseg/process.hpp"
#include "reasonseg/segmenter.hpp"
#include "reasonseg/tokenizer.hpp"
#include "reasonseg/version.hpp"
#include "reasonseg/prompts.hpp"
