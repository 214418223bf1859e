// A fixed candidate file (--candidate-file) against a small dataset, on arbitrary bytes:
// unknown users and items are counted skips, never an index out of range.
#include <cstdlib>

#include "fuzz_common.h"
#include "lrgd/data.h"
#include "lrgd/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const lrgd::data::Dataset ds =
      [] {
        const auto dir = lrgd::fuzz::scratch() / "cand-data";
        std::filesystem::create_directories(dir);
        std::ofstream(dir / "X.inter.json") << R"({"u1":[0,1,2,3],"u2":[3,2,1,0],"u3":[1,2,3,0]})";
        std::ofstream(dir / "X.item.json")
            << R"({"0":{"title":"A"},"1":{"title":"B"},"2":{"title":"C"},"3":{"title":"D"}})";
        lrgd::data::LoadOptions o;
        o.kcore = 0;
        return lrgd::data::load_dataset(dir, o);
      }();
  const auto path = lrgd::fuzz::write("candidates.tsv", data, size);
  lrgd::fuzz::expect_clean([&] {
    const auto c = lrgd::protocol::load_candidate_file(path, ds);
    for (const auto& list : c.by_user)
      for (const auto item : list)
        if (item < 0 || static_cast<std::size_t>(item) >= ds.items.size()) std::abort();
  });
  return 0;
}
