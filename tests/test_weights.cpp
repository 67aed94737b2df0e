// Weight files: safetensors rules, torch.save .bin shards, sharded indexes, and bad files.
#include <caffe2/serialize/inline_container.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <unistd.h>  // getpid

#include "fixture.hpp"
#include "io/checkpoint.hpp"
#include "io/safetensors.hpp"
#include "io/torch_bin.hpp"
#include "reasonseg/error.hpp"

namespace fs = std::filesystem;
using reasonseg::Error;

using rstest::error_of;

namespace {

std::string tmp_dir() {
  auto d = fs::temp_directory_path() / ("reasonseg_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d.string();
}

// Writes a safetensors file from a raw header string and `data_bytes` zero bytes.
std::string write_raw(const std::string& name, const std::string& header, size_t data_bytes, int64_t claimed_len = -1) {
  std::string path = tmp_dir() + "/" + name;
  std::ofstream f(path, std::ios::binary);
  uint64_t n = claimed_len >= 0 ? uint64_t(claimed_len) : header.size();
  f.write(reinterpret_cast<const char*>(&n), 8);
  f << header;
  f << std::string(data_bytes, '\0');
  return path;
}

}  // namespace

TEST_CASE("safetensors: a valid file reads back, metadata accepted", "[weights]") {
  auto path = tmp_dir() + "/ok.safetensors";
  std::map<std::string, torch::Tensor> t = {{"a", torch::arange(6, torch::kFloat32).view({2, 3})},
                                            {"b", torch::tensor({1, 2, 3}, torch::kInt64)},
                                            {"c", torch::ones({2}, torch::kBFloat16)}};
  reasonseg::write_safetensors(path, t, {{"format", "pt"}});
  reasonseg::SafetensorsFile f(path);
  REQUIRE(f.tensors().size() == 3);
  REQUIRE(f.metadata().at("format") == "pt");
  REQUIRE(torch::equal(f.view(*f.find("a")), t["a"]));
  REQUIRE(torch::equal(f.view(*f.find("b")), t["b"]));
  REQUIRE(f.view(*f.find("c")).scalar_type() == torch::kBFloat16);
}

TEST_CASE("safetensors: every broken file is an Error naming file and tensor", "[weights]") {
  const std::string ok = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";
  SECTION("truncated below the length field") {
    std::string p = tmp_dir() + "/tiny.safetensors";
    std::ofstream(p) << "abc";
    auto msg = error_of([&] { reasonseg::SafetensorsFile f(p); });
    REQUIRE_THAT(msg, Catch::Contains("tiny.safetensors") && Catch::Contains("truncated"));
  }
  SECTION("header longer than the file") {
    auto p = write_raw("long.safetensors", ok, 16, 1 << 20);
    REQUIRE_THAT(error_of([&] { reasonseg::SafetensorsFile f(p); }), Catch::Contains("longer than the file"));
  }
  SECTION("data cut short") {
    auto p = write_raw("cut.safetensors", ok, 8);
    REQUIRE_THAT(error_of([&] { reasonseg::SafetensorsFile f(p); }),
                 Catch::Contains("'w'") && Catch::Contains("past the end"));
  }
  SECTION("size does not match the shape") {
    auto p = write_raw("size.safetensors", R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})", 16);
    REQUIRE_THAT(error_of([&] { reasonseg::SafetensorsFile f(p); }), Catch::Contains("'w'") && Catch::Contains("needs 24"));
  }
  SECTION("overlapping tensors") {
    auto p = write_raw("overlap.safetensors",
                       R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 16);
    REQUIRE_THAT(error_of([&] { reasonseg::SafetensorsFile f(p); }), Catch::Contains("overlap"));
  }
  SECTION("reversed offsets") {
    auto p = write_raw("rev.safetensors", R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 16);
    REQUIRE_THAT(error_of([&] { reasonseg::SafetensorsFile f(p); }), Catch::Contains("reversed"));
  }
  SECTION("unknown dtype") {
    auto p = write_raw("dtype.safetensors", R"({"w":{"dtype":"F8_E9","shape":[4],"data_offsets":[0,4]}})", 4);
    REQUIRE_THAT(error_of([&] { reasonseg::SafetensorsFile f(p); }), Catch::Contains("unknown dtype"));
  }
  SECTION("duplicate key") {
    auto p = write_raw("dup.safetensors",
                       R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8);
    REQUIRE_THAT(error_of([&] { reasonseg::SafetensorsFile f(p); }), Catch::Contains("duplicate tensor key 'w'"));
  }
  SECTION("broken JSON") {
    auto p = write_raw("json.safetensors", R"({"w":{"dtype":)", 0);
    REQUIRE_THAT(error_of([&] { reasonseg::SafetensorsFile f(p); }), Catch::Contains("not valid JSON"));
  }
}

TEST_CASE("torch.save .bin shards load to the same values as the safetensors model", "[weights]") {
  auto bin = reasonseg::TensorSource::open_dir(rstest::data_dir() + "/tiny-lisa-a-bin");
  auto st = reasonseg::TensorSource::open_dir(rstest::model_dir());
  REQUIRE(bin.files().size() == 2);
  auto keys = bin.keys();
  REQUIRE(keys.size() > 100);
  std::map<std::string, torch::Tensor> bin_all, st_all;
  for (auto& f : bin.files())
    for (auto& [k, v] : bin.read_file(f)) bin_all[k] = v;
  st_all = st.read_file(st.files()[0]);
  int checked = 0;
  bool saw_fp32 = false, saw_bf16 = false;
  for (auto& [k, v] : bin_all) {
    INFO(k);
    REQUIRE(st_all.count(k));
    saw_fp32 |= v.scalar_type() == torch::kFloat32;
    saw_bf16 |= v.scalar_type() == torch::kBFloat16;
    REQUIRE(torch::equal(v.to(torch::kFloat32), st_all[k].to(torch::kFloat32)));
    ++checked;
  }
  REQUIRE(saw_fp32);
  REQUIRE(saw_bf16);
  REQUIRE(checked == int(keys.size()));
  // No vision-tower keys in the release layout.
  for (auto& k : keys) REQUIRE(k.find("vision_tower") == std::string::npos);
}

TEST_CASE("torch.save writer round-trips and broken .bin files are named errors", "[weights]") {
  auto path = tmp_dir() + "/rt.bin";
  std::vector<std::pair<std::string, torch::Tensor>> t = {{"x.weight", torch::randn({3, 5}).to(torch::kBFloat16)},
                                                          {"y", torch::arange(7, torch::kFloat32)}};
  reasonseg::write_torch_bin(path, t);
  auto back = reasonseg::read_torch_bin(path);
  REQUIRE(back.size() == 2);
  REQUIRE(back[0].first == "x.weight");
  REQUIRE(torch::equal(back[0].second, t[0].second));
  REQUIRE(torch::equal(back[1].second, t[1].second));

  SECTION("PyTorch's own zip reader (the one torch.load uses) accepts the archive and its CRCs") {
    caffe2::serialize::PyTorchStreamReader reader(path);
    REQUIRE(reader.hasRecord("data.pkl"));
    REQUIRE(reader.hasRecord("data/0"));
    auto [ptr, size] = reader.getRecord("data/0");
    REQUIRE(size == size_t(3 * 5 * 2));
    REQUIRE(std::memcmp(ptr.get(), t[0].second.data_ptr(), size) == 0);
    REQUIRE(std::get<1>(reader.getRecord("data/1")) == size_t(7 * 4));
    REQUIRE(reader.version() == 3);
  }
  SECTION("truncated file") {
    auto p = tmp_dir() + "/trunc.bin";
    fs::copy_file(path, p, fs::copy_options::overwrite_existing);
    fs::resize_file(p, fs::file_size(p) / 2);
    REQUIRE_THAT(error_of([&] { reasonseg::read_torch_bin(p); }), Catch::Contains("trunc.bin"));
  }
  SECTION("a pickle naming a global outside the state-dict allowlist") {
    // Same-length swap inside the stored data.pkl: collections.OrderedDict -> subprocess.check_output.
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    const std::string from = "collections\nOrderedDict\n", to = "subprocess\ncheck_output\n";
    REQUIRE(from.size() == to.size());
    auto at = bytes.find(from);
    REQUIRE(at != std::string::npos);
    bytes.replace(at, from.size(), to);
    auto p = tmp_dir() + "/evil.bin";
    std::ofstream(p, std::ios::binary) << bytes;
    REQUIRE_THAT(error_of([&] { reasonseg::read_torch_bin(p); }),
                 Catch::Contains("evil.bin") && Catch::Contains("'subprocess.check_output'") && Catch::Contains("refusing"));
  }
  SECTION("not a zip") {
    auto p = tmp_dir() + "/junk.bin";
    std::ofstream(p) << std::string(100, 'x');
    REQUIRE_THAT(error_of([&] { reasonseg::read_torch_bin(p); }), Catch::Contains("not a zip"));
  }
}

TEST_CASE("sharded index: missing shard and missing tensor are named", "[weights]") {
  auto d = tmp_dir() + "/sharded";
  fs::create_directories(d);
  reasonseg::write_safetensors(d + "/a.safetensors", {{"p", torch::ones({2})}});
  std::ofstream(d + "/model.safetensors.index.json") << R"({"weight_map":{"p":"a.safetensors","q":"b.safetensors"}})";
  REQUIRE_THAT(error_of([&] { reasonseg::TensorSource::open_dir(d); }), Catch::Contains("b.safetensors"));
  // An index that sends a tensor to the wrong shard is named as such (not as a duplicate).
  reasonseg::write_safetensors(d + "/b.safetensors", {{"q", torch::ones({3})}});
  std::ofstream(d + "/model.safetensors.index.json") << R"({"weight_map":{"p":"b.safetensors","q":"b.safetensors","r":"a.safetensors"}})";
  REQUIRE_THAT(error_of([&] { reasonseg::TensorSource::open_dir(d); }),
               Catch::Contains("weight_map sends 'p' to b.safetensors but it is in a.safetensors"));
  fs::remove(d + "/b.safetensors");
  std::ofstream(d + "/model.safetensors.index.json") << R"({"weight_map":{"p":"a.safetensors"}})";
  auto src = reasonseg::TensorSource::open_dir(d);
  REQUIRE(src.contains("p"));
  REQUIRE_THAT(error_of([&] { src.get("q"); }), Catch::Contains("'q'") && Catch::Contains("missing"));
  std::ofstream(d + "/model.safetensors.index.json") << "{not json";
  REQUIRE_THAT(error_of([&] { reasonseg::TensorSource::open_dir(d); }), Catch::Contains("invalid JSON"));
}
