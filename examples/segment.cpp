// The minimal reasonseg program: load a model, ask one question about one image, save the mask.
//
//   segment [MODEL_DIR IMAGE INSTRUCTION [MASK.png]]
//
// Without arguments it runs the bundled tiny model (random weights: a gibberish answer and a
// meaningless mask, but every stage of the pipeline runs) on the bundled example image.
#include <cstdio>
#include <string>

#include <reasonseg/reasonseg.hpp>

int main(int argc, char** argv) {
  try {
    const std::string model_dir = argc > 1 ? argv[1] : reasonseg::data_path("models/tiny-lisa-a");
    const std::string image_path = argc > 2 ? argv[2] : reasonseg::data_path("examples/dog.png");
    const std::string instruction =
        argc > 3 ? argv[3] : "What is the dog in this image? Please output segmentation mask.";
    const std::string mask_path = argc > 4 ? argv[4] : "mask.png";

    // 1. Load the weights once (an immutable model, shareable between threads).
    reasonseg::SegmenterOptions options;
    options.model_dir = model_dir;
    reasonseg::ReasoningSegmenter segmenter(options);

    // 2. Encode the image (CLIP + SAM): the expensive per-image step, reused by every question.
    cv::Mat image = reasonseg::read_image_file(image_path);  // 8-bit BGR
    reasonseg::ImageContext context = segmenter.encode_image(image);

    // 3. Ask. The answer holds one [SEG] per object; each gets a mask at the image's size.
    reasonseg::SegmentResult result = segmenter.segment(context, instruction);
    std::printf("answer: %s\n", result.text.c_str());
    if (!result.has_target()) {
      std::printf("no target: the answer has no [SEG]\n");
      return 0;
    }
    reasonseg::write_image_file(mask_path, result.masks[0].mask);  // 255 inside, 0 outside
    std::printf("mask: %s (%lld pixels, score %.3f), %.0f ms in all\n", mask_path.c_str(),
                static_cast<long long>(result.masks[0].area), result.masks[0].score, result.timings_ms["total"]);
    return 0;
  } catch (const reasonseg::Error& e) {  // every diagnosable failure names its file, key or argument
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
