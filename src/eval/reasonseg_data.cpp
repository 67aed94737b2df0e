#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "reasonseg/eval.hpp"
#include "util/error.hpp"

namespace fs = std::filesystem;

namespace reasonseg {

namespace {

// Windows-1252 to UTF-8; bytes Python's cp1252 codec cannot decode make the file malformed.
bool cp1252_to_utf8(const std::string& in, std::string& out) {
  static const uint16_t hi[32] = {0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
                                  0x2039, 0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
                                  0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178};
  out.clear();
  for (unsigned char c : in) {
    uint32_t cp = c;
    if (c >= 0x80 && c < 0xA0) {
      cp = hi[c - 0x80];
      if (!cp) return false;
    }
    if (cp < 0x80) out.push_back(char(cp));
    else if (cp < 0x800) out.push_back(char(0xC0 | (cp >> 6))), out.push_back(char(0x80 | (cp & 0x3F)));
    else out.push_back(char(0xE0 | (cp >> 12))), out.push_back(char(0x80 | ((cp >> 6) & 0x3F))), out.push_back(char(0x80 | (cp & 0x3F)));
  }
  return true;
}

}  // namespace

std::vector<std::string> list_reasonseg_samples(const std::string& dir) {
  if (!fs::is_directory(dir)) fail(dir, ": dataset directory does not exist");
  std::vector<std::string> names;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

ReasonSegSample load_reasonseg_sample(const std::string& dir, const std::string& name) {
  ReasonSegSample s;
  s.name = name;
  const std::string jpath = (fs::path(dir) / (name + ".json")).string();
  std::ifstream in(jpath, std::ios::binary);
  if (!in) fail(jpath, ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string raw = ss.str();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(raw);
  } catch (const nlohmann::json::exception& e) {
    std::string conv;
    bool utf8_error = std::string(e.what()).find("UTF-8") != std::string::npos ||
                      std::string(e.what()).find("invalid string") != std::string::npos;
    if (!utf8_error || !cp1252_to_utf8(raw, conv)) fail(jpath, ": invalid JSON: ", e.what());
    try {
      j = nlohmann::json::parse(conv);
    } catch (const nlohmann::json::exception& e2) {
      fail(jpath, ": invalid JSON: ", e2.what());
    }
  }
  if (!j.is_object()) fail(jpath, ": expected a JSON object");
  if (!j.contains("text")) fail(jpath, ": missing \"text\"");
  if (j["text"].is_string()) s.texts.push_back(j["text"]);
  else if (j["text"].is_array() && !j["text"].empty()) {
    for (auto& t : j["text"]) {
      if (!t.is_string()) fail(jpath, ": \"text\" entries must be strings");
      s.texts.push_back(t);
    }
  } else {
    fail(jpath, ": \"text\" must be a non-empty list of strings");
  }
  if (j.contains("is_sentence")) {
    if (!j["is_sentence"].is_boolean()) fail(jpath, ": \"is_sentence\" must be true or false");
    s.is_sentence = j["is_sentence"];
  }
  if (!j.contains("shapes") || !j["shapes"].is_array()) fail(jpath, ": missing \"shapes\" list");
  for (size_t k = 0; k < j["shapes"].size(); ++k) {
    auto& sh = j["shapes"][k];
    if (!sh.is_object() || !sh.contains("label") || !sh["label"].is_string())
      fail(jpath, ": shape ", k, " needs a string \"label\"");
    Polygon p;
    p.label = sh["label"];
    std::string lower = p.label;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (lower == "flag") continue;  // deprecated annotations, skipped by LISA
    if (!sh.contains("points") || !sh["points"].is_array()) fail(jpath, ": shape ", k, " needs a \"points\" list");
    for (auto& pt : sh["points"]) {
      if (!pt.is_array() || pt.size() != 2 || !pt[0].is_number() || !pt[1].is_number())
        fail(jpath, ": shape ", k, " has a point that is not [x, y]");
      p.points.push_back({pt[0].get<double>(), pt[1].get<double>()});
    }
    if (p.points.size() < 3) fail(jpath, ": shape ", k, " ('", p.label, "') has ", p.points.size(), " points; a polygon needs 3");
    s.polygons.push_back(std::move(p));
  }
  for (const char* ext : {".jpg", ".jpeg", ".png", ".JPG"}) {
    auto ip = fs::path(dir) / (name + ext);
    if (fs::exists(ip)) {
      s.image_path = ip.string();
      break;
    }
  }
  if (s.image_path.empty()) fail((fs::path(dir) / (name + ".jpg")).string(), ": image is missing");
  return s;
}

void validate_polygons(const ReasonSegSample& s, int height, int width) {
  for (auto& p : s.polygons)
    for (auto& pt : p.points)
      if (pt.x < -width || pt.x > 2.0 * width || pt.y < -height || pt.y > 2.0 * height)
        fail(s.name, ".json: polygon '", p.label, "' has point (", pt.x, ", ", pt.y, ") far outside the ", width, "x",
             height, " image");
}

cv::Mat rasterize_ground_truth(const std::vector<Polygon>& polygons, int height, int width) {
  std::vector<std::vector<cv::Point>> pts;
  std::vector<int64_t> area;
  for (auto& p : polygons) {
    std::vector<cv::Point> v;
    for (auto& q : p.points) v.push_back({int(q.x), int(q.y)});  // np.int32: truncation toward zero
    cv::Mat tmp = cv::Mat::zeros(height, width, CV_8U);
    cv::polylines(tmp, std::vector<std::vector<cv::Point>>{v}, true, 1, 1);
    cv::fillPoly(tmp, std::vector<std::vector<cv::Point>>{v}, 1);
    area.push_back(cv::countNonZero(tmp));
    pts.push_back(std::move(v));
  }
  // np.argsort(area)[::-1]: ascending (ties in listing order), then reversed.
  std::vector<size_t> order(polygons.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return area[a] < area[b]; });
  std::reverse(order.begin(), order.end());
  cv::Mat gt = cv::Mat::zeros(height, width, CV_8U);
  for (size_t i : order) {
    std::string lower = polygons[i].label;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    int value = lower.find("ignore") != std::string::npos ? 255 : 1;
    cv::polylines(gt, std::vector<std::vector<cv::Point>>{pts[i]}, true, value, 1);
    cv::fillPoly(gt, std::vector<std::vector<cv::Point>>{pts[i]}, value);
  }
  return gt;
}

std::string reasonseg_question(const std::string& text, bool is_sentence) {
  return is_sentence ? text + " Please output segmentation mask."
                     : "What is " + text + " in this image? Please output segmentation mask.";
}

}  // namespace reasonseg
