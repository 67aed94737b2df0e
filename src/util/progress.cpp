#include "util/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace reasonseg {

namespace {
std::string human(double v, bool bytes) {
  char buf[32];
  if (!bytes) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", v, units[u]);
  return buf;
}
}  // namespace

ProgressBar::ProgressBar(std::string label, int64_t total, bool bytes, bool enabled)
    : label_(std::move(label)), total_(total), bytes_(bytes), enabled_(enabled),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::advance(int64_t n) {
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ > std::chrono::milliseconds(200)) {
    last_draw_ = now;
    draw(false);
  }
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void ProgressBar::draw(bool final) {
  if (!enabled_) return;
  // Redrawn in place only on a terminal: a log file gets one line when the work is done.
  static const bool tty = ::isatty(2) == 1;
  if (!tty && !final) return;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double frac = total_ > 0 ? double(done_) / double(total_) : 1.0;
  int width = 30, fill = int(frac * width + 0.5);
  std::string bar(fill, '#');
  bar.resize(width, '.');
  double rate = secs > 0 ? done_ / secs : 0;
  double eta = rate > 0 ? (total_ - done_) / rate : 0;
  std::fprintf(stderr, "%s%s [%s] %3.0f%% %s/%s %s/s %s %.1fs%s", tty ? "\r" : "", label_.c_str(), bar.c_str(),
               frac * 100, human(done_, bytes_).c_str(), human(total_, bytes_).c_str(),
               human(rate, bytes_).c_str(), final ? "in" : "ETA", final ? secs : eta,
               final ? "\n" : "   ");
  std::fflush(stderr);
}

}  // namespace reasonseg
