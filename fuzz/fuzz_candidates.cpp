// A fixed candidate file (--candidate-file, TSV or MoRE's JSON) and a user list
// (--users-file) against a small dataset, on arbitrary bytes: unknown users and items are
// typed errors, never an index out of range; prepare_split on the file keeps every set in range.
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
    lrgd::protocol::ProtocolOptions o;
    o.n_users = 0;
    o.n_candidates = 4;
    o.negatives = lrgd::protocol::NegativeSampling::UniformAll;
    o.candidate_file = path;
    for (const auto& u : lrgd::protocol::prepare_split(ds, o).users)
      if (u.test_candidates.size() != 4) std::abort();
  });
  lrgd::fuzz::expect_clean([&] {
    for (const auto u : lrgd::protocol::load_user_list(path, ds).users)
      if (u < 0 || static_cast<std::size_t>(u) >= ds.n_users()) std::abort();
  });
  return 0;
}
