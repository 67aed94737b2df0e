#include "synthetic.hpp"

#include <filesystem>
#include <fstream>
#include <unistd.h>  // getpid
#include <opencv2/imgcodecs.hpp>

namespace fs = std::filesystem;

namespace rstest {

namespace {
void image(const std::string& path) {
  cv::Mat m(20, 20, CV_8UC3, cv::Scalar(40, 80, 120));
  cv::imwrite(path, m);
}
void pred(const std::string& path, cv::Rect r) {
  cv::Mat m = cv::Mat::zeros(20, 20, CV_8U);
  m(r) = 255;
  cv::imwrite(path, m);
}
}  // namespace

std::string make_synthetic_reasonseg(const std::string& tag) {
  auto dir = (fs::temp_directory_path() / ("reasonseg_eval_" + tag + "_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  fs::create_directories(dir + "/preds");
  const std::string sq = "[[2,2],[11,2],[11,11],[2,11]]";
  auto write = [&](const std::string& name, const std::string& json) { std::ofstream(dir + "/" + name + ".json") << json; };
  write("a_half", R"({"text": ["the square"], "is_sentence": false, "shapes": [{"label": "target", "points": )" + sq + "}]}");
  image(dir + "/a_half.jpg");
  pred(dir + "/preds/a_half.png", cv::Rect(2, 2, 5, 10));
  write("b_ignore", R"({"text": ["the square"], "is_sentence": false, "shapes": [{"label": "target", "points": )" + sq +
                        R"(}, {"label": "ignore", "points": [[7,2],[11,2],[11,11],[7,11]]}]})");
  image(dir + "/b_ignore.jpg");
  pred(dir + "/preds/b_ignore.png", cv::Rect(2, 2, 10, 10));
  write("c_empty", R"({"text": ["nothing"], "is_sentence": false, "shapes": []})");
  image(dir + "/c_empty.jpg");
  write("d_cp1252", std::string(R"({"text": ["the caf)") + "\xE9" +
                        R"( sign"], "is_sentence": true, "shapes": [{"label": "Flag", "points": [[0,0],[1,1]]}, {"label": "target", "points": )" +
                        sq + "}]}");
  image(dir + "/d_cp1252.jpg");
  pred(dir + "/preds/d_cp1252.png", cv::Rect(2, 2, 10, 10));
  write("e_two_points", R"({"text": ["x"], "is_sentence": false, "shapes": [{"label": "target", "points": [[1,1],[5,5]]}]})");
  image(dir + "/e_two_points.jpg");
  write("f_no_image", R"({"text": ["x"], "is_sentence": false, "shapes": []})");
  write("g_bad_json", R"({"text": ["x"], "shapes": [)");
  image(dir + "/g_bad_json.jpg");
  return dir;
}

}  // namespace rstest
