// Interactive multi-turn chat about one image: answers stream as they are generated, every turn
// continues the conversation's key/value cache, and each turn's masks are saved as an overlay.
//
//   chat [--model DIR] [--out-dir DIR] IMAGE
//
// Type a question and Enter. Commands: /undo (forget the last turn), /reset (forget them all),
// /history, /quit. Ctrl-C stops the answer being generated (the conversation stays usable).
// Reads questions from stdin, so it also runs scripted: printf 'q1\nq2\n' | chat IMAGE
#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include <reasonseg/reasonseg.hpp>

namespace {
std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }
}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, out_dir = ".", image_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) model_dir = argv[++i];
    else if (a == "--out-dir" && i + 1 < argc) out_dir = argv[++i];
    else if (!a.empty() && a[0] != '-') image_path = a;
    else {
      std::fprintf(stderr, "usage: %s [--model DIR] [--out-dir DIR] IMAGE\n", argv[0]);
      return 2;
    }
  }
  try {
    reasonseg::SegmenterOptions options;
    options.model_dir = model_dir.empty() ? reasonseg::data_path("models/tiny-lisa-a") : model_dir;
    options.max_new_tokens = 128;
    if (image_path.empty()) image_path = reasonseg::data_path("examples/dog.png");
    reasonseg::ReasoningSegmenter segmenter(options);
    cv::Mat image = reasonseg::read_image_file(image_path);
    reasonseg::ImageContext context = segmenter.encode_image(image);
    std::signal(SIGINT, on_sigint);  // an application may own its signals; the library never does

    std::printf("chatting about %s (%dx%d). /undo /reset /history /quit\n", image_path.c_str(), image.cols, image.rows);
    std::string line;
    for (int turn = 1;; ++turn) {
      std::printf("\nyou> ");
      std::fflush(stdout);
      if (!std::getline(std::cin, line) || line == "/quit") break;
      if (line.empty()) { --turn; continue; }
      if (line == "/reset" || line == "/undo") {
        const size_t n = context.history().size();
        context.truncate_history(line == "/reset" || n == 0 ? 0 : n - 1);
        std::printf("(%zu turns kept)\n", context.history().size());
        --turn;
        continue;
      }
      if (line == "/history") {
        for (const auto& t : context.history()) std::printf("  Q: %s\n  A: %s\n", t.question.c_str(), t.answer.c_str());
        --turn;
        continue;
      }

      reasonseg::QueryOptions query;
      query.continue_conversation = true;  // each question continues the conversation
      g_interrupted = false;
      query.on_text = [](const std::string& piece) {  // pieces are whole UTF-8 characters
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return !g_interrupted;  // false stops generation
      };
      std::printf("model> ");
      reasonseg::SegmentResult r = segmenter.segment(context, line, query);
      if (r.stopped_by == reasonseg::StopReason::Cancelled) std::printf(" [stopped]");
      std::printf("\n");

      const std::string overlay = out_dir + "/chat_turn" + std::to_string(turn) + ".png";
      reasonseg::write_image_file(overlay, reasonseg::draw_overlay(image, reasonseg::ColorOrder::BGR, r, r.text));
      std::printf("(%zu mask%s -> %s; %lld new positions computed, %.0f ms)\n", r.masks.size(),
                  r.masks.size() == 1 ? "" : "s", overlay.c_str(), static_cast<long long>(r.prefill_tokens),
                  r.timings_ms["total"]);
    }
    return 0;
  } catch (const reasonseg::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
