// A frame loop, the shape a robotics node takes: frames arrive from a camera, a video file or an
// image sequence; every N-th frame is encoded and asked the instruction; the latest mask is
// applied to the frames in between; per-frame latency is reported.
//
//   camera_loop [--model DIR] [--every N] [--max-frames N] [--prompt TEXT] [--out FILE] SOURCE
//
// SOURCE: a camera index ("0"), a video file, or an image sequence pattern ("frames/%03d.png").
//
// Inside a ROS 2 node (no ROS dependency here): construct the ReasoningSegmenter once in the
// node's constructor; in the image subscription callback convert the sensor_msgs/Image with
// cv_bridge (cv_bridge::toCvShare(msg, "bgr8")->image) and run what `process` below does; publish
// r.masks[0].mask as a mono8 sensor_msgs/Image with the input's header (same stamp and frame_id) and
// r.text as std_msgs/String. Keep the model call off the executor's only thread (a
// MutuallyExclusiveCallbackGroup with a MultiThreadedExecutor) and drop frames that arrive while a
// query runs, as the loop below does; QueryOptions::timeout_ms bounds a query.
#include <chrono>
#include <cstdio>
#include <string>

#include <opencv2/videoio.hpp>
#include <reasonseg/reasonseg.hpp>

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, source, out = "camera_loop_last.png";
  std::string prompt = "What is the dog in this image? Please output segmentation mask.";
  int every = 5, max_frames = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--model") model_dir = value();
    else if (a == "--every") every = std::stoi(value());
    else if (a == "--max-frames") max_frames = std::stoi(value());
    else if (a == "--prompt") prompt = value();
    else if (a == "--out") out = value();
    else if (!a.empty() && a[0] != '-') source = a;
    else {
      std::fprintf(stderr, "usage: %s [--model DIR] [--every N] [--max-frames N] [--prompt TEXT] [--out FILE] SOURCE\n",
                   argv[0]);
      return 2;
    }
  }
  if (source.empty() || every < 1) {
    std::fprintf(stderr, "camera_loop: give a SOURCE (camera index, video file or image pattern) and --every >= 1\n");
    return 2;
  }
  try {
    reasonseg::SegmenterOptions options;
    options.model_dir = model_dir.empty() ? reasonseg::data_path("models/tiny-lisa-a") : model_dir;
    options.max_new_tokens = 32;  // a robot wants a short answer and its mask
    reasonseg::ReasoningSegmenter segmenter(options);

    cv::VideoCapture capture;
    const bool is_camera = source.find_first_not_of("0123456789") == std::string::npos;
    if (is_camera) capture.open(std::stoi(source));
    else capture.open(source);
    if (!capture.isOpened()) {
      std::fprintf(stderr, "camera_loop: cannot open %s\n", source.c_str());
      return 1;
    }

    std::vector<reasonseg::SegMask> latest;  // the last query's masks, shown on the frames in between
    std::string answer;
    cv::Mat frame, shown;
    int n = 0, queries = 0;
    double query_ms_sum = 0;
    const auto start = Clock::now();
    while ((max_frames < 0 || n < max_frames) && capture.read(frame) && !frame.empty()) {
      const auto t0 = Clock::now();
      if (n % every == 0) {
        // The per-frame work of a node: encode this frame and ask.
        reasonseg::ImageContext ctx = segmenter.encode_image(frame);
        reasonseg::QueryOptions q;
        q.timeout_ms = 10'000;
        reasonseg::SegmentResult r = segmenter.segment(ctx, prompt, q);
        latest = r.has_target() ? r.masks : std::vector<reasonseg::SegMask>{};
        answer = r.text;
        ++queries;
        query_ms_sum += ms_since(t0);
        std::printf("frame %4d: query %7.1f ms (encode %.1f, prefill %.1f, decode %.1f), %zu mask%s, %s\n", n,
                    ms_since(t0), r.timings_ms["clip"] + r.timings_ms["sam_encoder"], r.timings_ms["prefill"],
                    r.timings_ms["decode"], r.masks.size(), r.masks.size() == 1 ? "" : "s",
                    r.stopped_by == reasonseg::StopReason::Deadline ? "deadline hit" : "ok");
      }
      // Masks are per image size: a camera whose resolution changes needs a new query first.
      if (!latest.empty() && latest[0].mask.size() != frame.size()) latest.clear();
      shown = reasonseg::draw_overlay(frame, reasonseg::ColorOrder::BGR, latest, answer);
      ++n;
    }
    if (n == 0) {
      std::fprintf(stderr, "camera_loop: %s gave no frame\n", source.c_str());
      return 1;
    }
    reasonseg::write_image_file(out, shown);
    std::printf("%d frames, %d queries (mean %.1f ms), %.2f frames/s overall; last overlay: %s\n", n, queries,
                queries ? query_ms_sum / queries : 0.0, n / (ms_since(start) / 1000.0), out.c_str());
    return 0;
  } catch (const reasonseg::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
