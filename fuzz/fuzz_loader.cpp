// One dataset loader on an arbitrary file (the format is chosen at compile time,
// LRGD_FUZZ_FORMAT): never a crash; bad input is an InputError naming file and line, or a
// counted skip; a loaded dataset is internally consistent.
#include <cstdlib>
#include <string>

#include "fuzz_common.h"
#include "lrgd/data.h"

namespace {

// The fuzzed file beside fixed companions, so the loader reaches the fuzzed one.
std::filesystem::path layout(const std::uint8_t* data, std::size_t size) {
  namespace fs = std::filesystem;
  const fs::path dir = lrgd::fuzz::scratch() / "data";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto put = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name, std::ios::binary) << text;
  };
  const auto fuzzed = [&](const std::string& name) {
    std::ofstream(dir / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  };
  const std::string format = LRGD_FUZZ_FORMAT;
  if (format == "lcrec_inter") {
    fuzzed("X.inter.json");
    put("X.item.json", R"({"0":{"title":"A"},"1":{"title":"B"},"2":{"title":"C"}})");
  } else if (format == "lcrec_item") {
    put("X.inter.json", R"({"0":[0,1,2],"1":[2,1,0]})");
    fuzzed("X.item.json");
  } else if (format == "csv") {
    fuzzed("interactions.csv");
    put("items.csv", "item,title\na1,Alpha\na2,Beta\n");
  } else if (format == "recbole") {
    fuzzed("X-all.test.inter");
    put("X-all.valid.inter", "user_id:token\titem_id_list:token_seq\titem_id:token\nu1\ta1\ta2\n");
    put("X.item", "item_id:token\ttitle:token_seq\na1\tAlpha\na2\tBeta\n");
  } else if (format == "amazon") {
    fuzzed("reviews.json");
  } else if (format == "amazon_meta") {
    put("reviews.json",
        "{\"reviewerID\": \"u1\", \"asin\": \"a1\", \"unixReviewTime\": 1}\n"
        "{\"reviewerID\": \"u1\", \"asin\": \"a2\", \"unixReviewTime\": 2}\n");
    fuzzed("meta_reviews.json");
  }
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto dir = layout(data, size);
  lrgd::fuzz::expect_clean([&] {
    lrgd::data::LoadOptions o;
    o.kcore = 0;
    const auto ds = lrgd::data::load_dataset(dir, o);
    for (const auto& seq : ds.sequences)
      for (const auto item : seq)
        if (item < 0 || static_cast<std::size_t>(item) >= ds.items.size()) std::abort();
    if (ds.user_ids.size() != ds.sequences.size()) std::abort();
  });
  return 0;
}
