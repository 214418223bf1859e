// Loaders on the tiny fixtures: one dataset in four formats, ordering, filters, bad input.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "data_test_util.h"
#include "lrgd/data.h"
#include "lrgd/error.h"
#include "lrgd/rng.h"

namespace lrgd::data {
namespace {

using test::find_issue;
using test::fixture;
using test::seq_ids;
using test::TempDir;

// The content hash of the tiny dataset (tests/fixtures/data/{lcrec,recbole,raw,csv}):
// fixed here so that a change of the canonical serialisation or of any loader shows up.
constexpr const char* kTinyHash = "fd44cd448aad095f79694db6c33853f3585624fcb85bd12c6a9b93296a315b2d";

LoadOptions no_kcore() {
  LoadOptions o;
  o.kcore = 0;
  return o;
}

void expect_tiny(const Dataset& ds) {
  ASSERT_EQ(ds.n_users(), 4u);
  ASSERT_EQ(ds.n_items(), 8u);
  EXPECT_EQ(ds.n_interactions(), 15u);
  EXPECT_EQ(ds.user_ids, (std::vector<std::string>{"u1", "u2", "u3", "u4"}));
  EXPECT_EQ(seq_ids(ds, 0), "a1 a2 a3 a4");
  EXPECT_EQ(seq_ids(ds, 1), "a2 a5 a1");
  EXPECT_EQ(seq_ids(ds, 2), "a6 a3 a7 a5 a8");
  EXPECT_EQ(seq_ids(ds, 3), "a8 a6 a2");
  const std::vector<std::string> titles{"Alpha & Omega, the Game",
                                        "Beta Game (PS4)",
                                        "Caf\xC3\xA9 Racer \xE2\x80\x93 Deluxe",
                                        "Delta Force",
                                        "Echo \"Remastered\"",
                                        "Foxtrot Kit",
                                        "Golf \xE2\x84\xA2 Pro",
                                        ""};
  for (std::size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(ds.items[i].id, "a" + std::to_string(i + 1));
    EXPECT_EQ(ds.items[i].title, titles[i]) << ds.items[i].id;
  }
  const LoadIssue* missing = find_issue(ds.issues, "missing_title");
  ASSERT_NE(missing, nullptr);
  EXPECT_EQ(missing->count, 1u);
  EXPECT_FALSE(missing->dropped);
  EXPECT_EQ(ds.content_hash, kTinyHash);
}

TEST(Loaders, SameContentInFourFormatsGivesOneHash) {
  for (const std::string dir : {"lcrec", "recbole", "raw", "csv"}) {
    SCOPED_TRACE(dir);
    const Dataset ds = load_dataset(fixture(dir), no_kcore());
    expect_tiny(ds);
  }
  EXPECT_EQ(load_dataset(fixture("lcrec"), no_kcore()).format, "lcrec");
  EXPECT_EQ(load_dataset(fixture("recbole"), no_kcore()).format, "recbole");
  EXPECT_EQ(load_dataset(fixture("raw"), no_kcore()).format, "amazon-raw");
  EXPECT_EQ(load_dataset(fixture("csv"), no_kcore()).format, "csv");
  EXPECT_EQ(load_dataset(fixture("raw"), no_kcore()).name, "Tiny");
}

TEST(Loaders, FilePathsAndForcedFormats) {
  expect_tiny(load_dataset(fixture("lcrec/Tiny.inter.json"), no_kcore()));
  expect_tiny(load_dataset(fixture("lcrec/Tiny.item.json"), no_kcore()));
  expect_tiny(load_dataset(fixture("recbole/Tiny-all.test.inter"), no_kcore()));
  expect_tiny(load_dataset(fixture("raw/Tiny.json"), no_kcore()));
  LoadOptions o = no_kcore();
  o.items_file = fixture("csv/items.csv");
  expect_tiny(load_dataset(fixture("csv/interactions.csv"), o));
  o = no_kcore();
  o.format = Format::LcRec;
  expect_tiny(load_dataset(fixture("lcrec"), o));
  o.format = Format::RecBole;
  EXPECT_THROW(load_dataset(fixture("lcrec"), o), InputError);
  EXPECT_THROW(load_dataset(fixture("no_such_dir"), no_kcore()), IoError);
  EXPECT_THROW(parse_format("parquet"), OptionError);
  EXPECT_EQ(parse_format("amazon-raw"), Format::AmazonRaw);
  EXPECT_EQ(format_name(Format::Csv), "csv");
}

TEST(Loaders, LcRecSourceIds) {
  const Dataset ds = load_dataset(fixture("lcrec"), no_kcore());
  EXPECT_EQ(ds.items[0].alt_id, "B0000000");
  EXPECT_EQ(ds.items[7].alt_id, "B0000007");
  ASSERT_EQ(ds.user_alt_ids.size(), 4u);
  EXPECT_EQ(ds.user_alt_ids[2], "AREV2");
}

TEST(Loaders, RawTiesKeepFileOrder) {
  // u1 reviewed a2 and a3 at the same time (a2's line first); u3 reviewed a7 and a5 at the
  // same time (a7's line first): the reading order breaks the ties.
  const Dataset ds = load_dataset(fixture("raw"), no_kcore());
  EXPECT_EQ(seq_ids(ds, 0), "a1 a2 a3 a4");
  EXPECT_EQ(seq_ids(ds, 2), "a6 a3 a7 a5 a8");
}

TEST(Loaders, GzipFilesLoadLikePlainOnes) {
  TempDir dir("gz");
  test::write_gz(dir / "Tiny.json.gz", test::read_file(fixture("raw/Tiny.json")));
  test::write_gz(dir / "meta_Tiny.json.gz", test::read_file(fixture("raw/meta_Tiny.json")));
  const Dataset ds = load_dataset(dir.path(), no_kcore());
  expect_tiny(ds);
  EXPECT_EQ(ds.name, "Tiny");
}

TEST(Loaders, TruncatedGzipIsAnInputErrorNamingFileAndLine) {
  TempDir dir("gztrunc");
  // Enough incompressible text that the cut falls inside the compressed data.
  std::string text;
  Rng rng(7);
  for (int i = 0; i < 4000; ++i) {
    text += R"({"reviewerID": "u)" + std::to_string(rng.uniform(500)) + R"(", "asin": "i)" +
            std::to_string(rng.uniform(300)) + R"(", "unixReviewTime": )" + std::to_string(rng.uniform(1000000)) +
            "}\n";
  }
  test::write_gz(dir / "Big.json.gz", text);
  const std::string gz = test::read_file(dir / "Big.json.gz");
  test::write_file(dir / "Big.json.gz", gz.substr(0, gz.size() / 2));
  try {
    load_dataset(dir.path(), no_kcore());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), "gzip");
    EXPECT_NE(e.file().find("Big.json.gz"), std::string::npos);
    EXPECT_GT(e.line(), 1u);
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  // A .gz with a corrupt body.
  std::string bad = gz;
  for (std::size_t i = 20; i < 200 && i < bad.size(); ++i) bad[i] = static_cast<char>(bad[i] ^ 0x5A);
  test::write_file(dir / "Big.json.gz", bad);
  EXPECT_THROW(load_dataset(dir.path(), no_kcore()), InputError);
}

TEST(Loaders, KCoreOnTinyData) {
  LoadOptions o;
  o.kcore = 2;  // a4 and a7 have one interaction each
  const Dataset ds = load_dataset(fixture("raw"), o);
  EXPECT_EQ(ds.n_users(), 4u);
  EXPECT_EQ(ds.n_items(), 6u);
  EXPECT_EQ(ds.n_interactions(), 13u);
  EXPECT_EQ(seq_ids(ds, 0), "a1 a2 a3");
  EXPECT_EQ(seq_ids(ds, 2), "a6 a3 a5 a8");
  ASSERT_NE(find_issue(ds.issues, "kcore_item"), nullptr);
  EXPECT_EQ(find_issue(ds.issues, "kcore_item")->count, 2u);
  EXPECT_EQ(find_issue(ds.issues, "kcore_interaction")->count, 2u);
  EXPECT_EQ(find_issue(ds.issues, "kcore_user"), nullptr);
  // The default 5-core leaves nothing of the tiny data: a clear error, not an empty dataset.
  try {
    load_dataset(fixture("raw"), LoadOptions{});
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("5-core"), std::string::npos) << e.what();
  }
}

// Reference k-core: the largest sub-graph where every user and item has >= k edges.
std::set<std::pair<std::string, std::string>> reference_kcore(std::set<std::pair<std::string, std::string>> edges,
                                                              std::size_t k) {
  while (true) {
    std::map<std::string, std::size_t> du, di;
    for (const auto& [u, i] : edges) {
      ++du[u];
      ++di[i];
    }
    std::set<std::pair<std::string, std::string>> kept;
    for (const auto& e : edges) {
      if (du[e.first] >= k && di[e.second] >= k) kept.insert(e);
    }
    if (kept.size() == edges.size()) return kept;
    edges = std::move(kept);
  }
}

TEST(Loaders, KCoreMatchesAReferenceOnRandomData) {
  TempDir dir("kcore");
  Rng rng(11);
  std::string csv = "user,item,timestamp\n";
  std::set<std::pair<std::string, std::string>> edges;
  for (int n = 0; n < 6000; ++n) {
    // Skewed ids so that the filter needs several rounds.
    const auto u = "u" + std::to_string(rng.uniform(1 + rng.uniform(600)));
    const auto i = "i" + std::to_string(rng.uniform(1 + rng.uniform(400)));
    csv += u + "," + i + "," + std::to_string(rng.uniform(100000)) + "\n";
    edges.emplace(u, i);
  }
  test::write_file(dir / "log.csv", csv);
  for (const int k : {3, 5, 10}) {
    SCOPED_TRACE(k);
    LoadOptions o;
    o.kcore = k;
    o.repeats = Repeats::First;  // the reference counts distinct (user, item) edges
    const Dataset ds = load_dataset(dir / "log.csv", o);
    std::set<std::pair<std::string, std::string>> got;
    for (std::size_t u = 0; u < ds.n_users(); ++u) {
      for (const ItemIndex i : ds.sequences[u]) got.emplace(ds.user_ids[u], ds.items[static_cast<std::size_t>(i)].id);
    }
    EXPECT_EQ(got, reference_kcore(edges, static_cast<std::size_t>(k)));
    EXPECT_GT(got.size(), 100u);
  }
}

TEST(Loaders, TitleTruncationOption) {
  LoadOptions o = no_kcore();
  o.title_max_chars = 4;
  const Dataset ds = load_dataset(fixture("lcrec"), o);
  EXPECT_EQ(ds.items[0].title, "Alph");
  EXPECT_EQ(ds.items[2].title, "Caf\xC3\xA9");
  EXPECT_NE(ds.content_hash, kTinyHash);
}

TEST(Loaders, StatsOfTinyData) {
  const auto s = compute_stats(load_dataset(fixture("lcrec"), no_kcore()));
  EXPECT_EQ(s.n_users, 4u);
  EXPECT_EQ(s.n_items, 8u);
  EXPECT_EQ(s.n_interactions, 15u);
  EXPECT_DOUBLE_EQ(s.sparsity, 1.0 - 15.0 / 32.0);
  EXPECT_DOUBLE_EQ(s.seq_len_mean, 3.75);
  EXPECT_DOUBLE_EQ(s.seq_len_median, 3.5);  // lengths 3 3 4 5
  EXPECT_EQ(s.seq_len_min, 3u);
  EXPECT_EQ(s.seq_len_max, 5u);
  EXPECT_EQ(s.n_items_with_title, 7u);
  EXPECT_DOUBLE_EQ(s.title_coverage, 7.0 / 8.0);
}

TEST(Loaders, CsvWithoutHeaderAndRecBolePerInteraction) {
  TempDir dir("tables");
  test::write_file(dir / "log.tsv", "x\tp\t3\nx\tq\t1\nx\tr\t2\ny\tp\t1\ny\tq\t1\ny\tr\t1\n");
  LoadOptions o = no_kcore();
  Dataset ds = load_dataset(dir / "log.tsv", o);
  EXPECT_EQ(seq_ids(ds, 0), "q r p");
  EXPECT_EQ(seq_ids(ds, 1), "p q r");  // equal times keep the file order
  const LoadIssue* missing = find_issue(ds.issues, "missing_title");
  ASSERT_NE(missing, nullptr);
  EXPECT_EQ(missing->count, 3u);

  TempDir rb("recbole");
  test::write_file(rb / "D.inter",
                   "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                   "1\t10\t5\t100.5\n1\t11\t5\t100.25\n1\t12\t4\t99\n2\t10\t3\t1\n2\t12\t3\t2\n2\t11\t3\t3\n");
  test::write_file(rb / "D.item",
                   "item_id:token\ttitle:token_seq\tbrand:token\n10\tTen\tAcme\n11\tEleven\t\n12\tTwelve\tZed\n");
  ds = load_dataset(rb.path(), o);
  EXPECT_EQ(ds.format, "recbole");
  EXPECT_EQ(seq_ids(ds, 0), "12 11 10");
  EXPECT_EQ(seq_ids(ds, 1), "10 12 11");
  EXPECT_EQ(ds.items[0].id, "12");  // first use order
  EXPECT_EQ(ds.items[0].title, "Twelve");
  EXPECT_EQ(ds.items[0].brand, "Zed");
}

// --- Bad input: every problem is an error naming file, line and field, or a counted skip.

void expect_issue(const Dataset& ds, std::string_view kind, std::uint64_t count, std::uint64_t line,
                  std::string_view file_end) {
  const LoadIssue* i = find_issue(ds.issues, kind);
  ASSERT_NE(i, nullptr) << kind;
  EXPECT_EQ(i->count, count) << kind;
  EXPECT_EQ(i->line, line) << kind;
  EXPECT_TRUE(i->file.ends_with(file_end)) << kind << " " << i->file;
}

LoadOptions repeats(Repeats r) {
  LoadOptions o = no_kcore();
  o.repeats = r;
  return o;
}

TEST(BadInput, LcRecSkipsAreCounted) {
  const Dataset ds = load_dataset(fixture("bad_lcrec"), repeats(Repeats::First));
  EXPECT_EQ(ds.user_ids, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(seq_ids(ds, 0), "0 1 2 3");
  EXPECT_EQ(seq_ids(ds, 1), "0 1 2");
  EXPECT_EQ(seq_ids(ds, 2), "1 2 4 5");
  expect_issue(ds, "unknown_item", 1, 3, "Bad.inter.json");
  expect_issue(ds, "duplicate_interaction", 1, 4, "Bad.inter.json");
  expect_issue(ds, "short_user", 1, 5, "Bad.inter.json");
  expect_issue(ds, "missing_title", 2, 0, "Bad.item.json");
  EXPECT_EQ(ds.items[1].brand, "Acme");
  EXPECT_EQ(ds.items[1].category, "Games, PC");
}

TEST(BadInput, StrictModeThrowsAtTheFirstSkip) {
  LoadOptions o = no_kcore();
  o.strict = true;
  try {
    load_dataset(fixture("bad_lcrec"), o);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_TRUE(e.file().ends_with("Bad.inter.json"));
    EXPECT_EQ(e.line(), 3u);
    EXPECT_EQ(e.field(), "1[2]");
    EXPECT_NE(std::string(e.what()).find("'99'"), std::string::npos);
  }
  try {
    load_dataset(fixture("bad_raw"), o);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_EQ(e.line(), 2u);
    EXPECT_NE(std::string(e.what()).find("malformed JSON"), std::string::npos);
  }
}

TEST(BadInput, MalformedSingleDocumentJsonNamesLineAndField) {
  try {
    load_dataset(fixture("bad_lcrec_malformed"), no_kcore());
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_TRUE(e.file().ends_with("M.inter.json"));
    EXPECT_EQ(e.line(), 3u);
    EXPECT_EQ(e.field(), "1");
    EXPECT_NE(std::string(e.what()).find("column 12"), std::string::npos) << e.what();
  }
}

TEST(BadInput, EmptyFilesAreErrors) {
  EXPECT_THROW(load_dataset(fixture("bad_empty"), no_kcore()), InputError);
  TempDir dir("empty");
  test::write_file(dir / "E.json", "");
  EXPECT_THROW(load_dataset(dir / "E.json", no_kcore()), InputError);
  test::write_file(dir / "e.csv", "");
  EXPECT_THROW(load_dataset(dir / "e.csv", no_kcore()), InputError);
  TempDir gz("emptygz");
  test::write_gz(gz / "E.json.gz", "");
  EXPECT_THROW(load_dataset(gz.path(), no_kcore()), InputError);
  TempDir rb("emptyrb");
  test::write_file(rb / "E.test.inter", "");
  EXPECT_THROW(load_dataset(rb.path(), no_kcore()), InputError);
  TempDir none("nothing");
  EXPECT_THROW(load_dataset(none.path(), no_kcore()), InputError);
}

TEST(BadInput, RawSkipsAreCounted) {
  const Dataset ds = load_dataset(fixture("bad_raw"), repeats(Repeats::First));
  ASSERT_EQ(ds.n_users(), 1u);
  EXPECT_EQ(seq_ids(ds, 0), "a1 a2 a3");
  expect_issue(ds, "malformed_json", 1, 2, "Bad.json");
  expect_issue(ds, "missing_field", 1, 3, "Bad.json");
  expect_issue(ds, "duplicate_interaction", 1, 4, "Bad.json");
  expect_issue(ds, "bad_field", 1, 9, "Bad.json");
  expect_issue(ds, "short_user", 1, 8, "Bad.json");
  expect_issue(ds, "blank_line", 1, 7, "Bad.json");
  expect_issue(ds, "duplicate_item", 1, 4, "meta_Bad.json");
  expect_issue(ds, "missing_title", 1, 0, "meta_Bad.json");
  EXPECT_EQ(ds.items[0].title, "First & best");
  EXPECT_EQ(ds.items[0].brand, "Acme");
  EXPECT_EQ(ds.items[0].category, "Video Games > PC > Accessories");
  EXPECT_EQ(ds.items[2].title, "Third");
  // The two malformed_json issues (reviews and metadata) are kept apart by file.
  std::size_t n = 0;
  for (const auto& i : ds.issues) n += i.kind == "malformed_json" ? 1 : 0;
  EXPECT_EQ(n, 2u);
}

TEST(BadInput, CsvSkipsAreCounted) {
  const Dataset ds = load_dataset(fixture("bad_csv"), repeats(Repeats::First));
  EXPECT_EQ(ds.user_ids, (std::vector<std::string>{"u1", "u2"}));
  EXPECT_EQ(seq_ids(ds, 0), "i1 i2 i3");
  EXPECT_EQ(seq_ids(ds, 1), "i2 i3 i4");
  expect_issue(ds, "bad_timestamp", 1, 4, "interactions.csv");
  expect_issue(ds, "duplicate_interaction", 1, 6, "interactions.csv");
  expect_issue(ds, "malformed_line", 2, 7, "interactions.csv");  // too few fields; unterminated quote
  expect_issue(ds, "short_user", 1, 12, "interactions.csv");
  expect_issue(ds, "missing_title", 1, 0, "items.csv");
  EXPECT_EQ(ds.items[0].title, "One, quoted \"x\"");
}

TEST(BadInput, RecBoleSkipsAreCounted) {
  const Dataset ds = load_dataset(fixture("bad_recbole"), no_kcore());
  EXPECT_EQ(ds.user_ids, (std::vector<std::string>{"u1", "u3", "u5"}));
  EXPECT_EQ(seq_ids(ds, 0), "1 2 3 4");
  EXPECT_EQ(seq_ids(ds, 1), "1 2 4");  // unknown item 9 skipped
  EXPECT_EQ(seq_ids(ds, 2), "1 2 4");
  expect_issue(ds, "inconsistent_split", 1, 3, "Bad.test.inter");
  expect_issue(ds, "unknown_item", 1, 4, "Bad.test.inter");
  expect_issue(ds, "unpaired_user", 1, 5, "Bad.valid.inter");
}

// --- --repeats: a user's repeated item is kept (default) or only its first or last occurrence.

TEST(Repeats, EveryLoaderKeepsFirstOrLast) {
  struct Case {
    std::string dir;
    std::size_t user;
    std::string keep, first, last;
    std::uint64_t line;  // of the repeat counted (keep, first: the later one; last: the earlier one)
    std::uint64_t last_line;
    std::string file;
  };
  const std::vector<Case> cases{
      {"bad_lcrec", 2, "1 2 1 4 5", "1 2 4 5", "2 1 4 5", 4, 4, "Bad.inter.json"},
      {"bad_raw", 0, "a1 a1 a2 a3", "a1 a2 a3", "a1 a2 a3", 4, 1, "Bad.json"},
      {"bad_csv", 0, "i1 i2 i3 i2", "i1 i2 i3", "i1 i3 i2", 6, 3, "interactions.csv"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.dir);
    const Dataset keep = load_dataset(fixture(c.dir), no_kcore());
    EXPECT_EQ(keep.repeats, "keep");
    EXPECT_EQ(seq_ids(keep, c.user), c.keep);
    expect_issue(keep, "repeat_interaction", 1, c.line, c.file);
    const LoadIssue* kept = find_issue(keep.issues, "repeat_interaction");
    ASSERT_NE(kept, nullptr);
    EXPECT_FALSE(kept->dropped);
    EXPECT_EQ(find_issue(keep.issues, "duplicate_interaction"), nullptr);
    const Dataset first = load_dataset(fixture(c.dir), repeats(Repeats::First));
    EXPECT_EQ(seq_ids(first, c.user), c.first);
    expect_issue(first, "duplicate_interaction", 1, c.line, c.file);
    const LoadIssue* dropped = find_issue(first.issues, "duplicate_interaction");
    ASSERT_NE(dropped, nullptr);
    EXPECT_TRUE(dropped->dropped);
    const Dataset last = load_dataset(fixture(c.dir), repeats(Repeats::Last));
    EXPECT_EQ(last.repeats, "last");
    EXPECT_EQ(seq_ids(last, c.user), c.last);
    expect_issue(last, "duplicate_interaction", 1, c.last_line, c.file);
    EXPECT_EQ(find_issue(last.issues, "repeat_interaction"), nullptr);
    // Kept repeats never fail a strict load; dropped ones do.
    LoadOptions strict = no_kcore();
    strict.strict = true;
    strict.repeats = Repeats::First;
    EXPECT_THROW(load_dataset(fixture(c.dir), strict), InputError);
  }
}

TEST(Repeats, RecBoleSequencesAndHashes) {
  TempDir dir("repeats");
  test::write_file(dir / "R.valid.inter",
                   "user_id:token\titem_id_list:token_seq\titem_id:token\nu1\tx y x\tz\nu2\tx y\tz\n");
  test::write_file(dir / "R.test.inter",
                   "user_id:token\titem_id_list:token_seq\titem_id:token\nu1\tx y x z\ty\nu2\tx y z\tw\n");
  const Dataset keep = load_dataset(dir.path(), no_kcore());
  EXPECT_EQ(seq_ids(keep, 0), "x y x z y");
  expect_issue(keep, "repeat_interaction", 2, 2, "R.test.inter");
  const Dataset first = load_dataset(dir.path(), repeats(Repeats::First));
  EXPECT_EQ(seq_ids(first, 0), "x y z");
  const Dataset last = load_dataset(dir.path(), repeats(Repeats::Last));
  EXPECT_EQ(seq_ids(last, 0), "x z y");
  EXPECT_EQ(seq_ids(last, 1), "x y z w");
  EXPECT_NE(keep.content_hash, first.content_hash);
  EXPECT_NE(first.content_hash, last.content_hash);
  // Without repeats the mode changes nothing: the Tiny data gives one hash under every mode.
  for (const auto r : {Repeats::Keep, Repeats::First, Repeats::Last}) {
    for (const std::string d : {"lcrec", "recbole", "raw", "csv", "unisrec"}) {
      EXPECT_EQ(load_dataset(fixture(d), repeats(r)).content_hash, kTinyHash) << d;
    }
  }
  EXPECT_EQ(parse_repeats("first"), Repeats::First);
  EXPECT_EQ(repeats_name(Repeats::Last), "last");
  EXPECT_THROW(parse_repeats("all"), OptionError);
}

// --- UniSRec downstream layout: indices in the .inter files, X.text by source id.

TEST(Loaders, UniSRecLayoutLoadsWithTitles) {
  const Dataset ds = load_dataset(fixture("unisrec"), no_kcore());
  EXPECT_EQ(ds.format, "recbole");
  EXPECT_EQ(ds.name, "Tiny");
  expect_tiny(ds);  // the same content (and hash) as the other four formats
  EXPECT_EQ(ds.items[2].alt_id, "3");
  EXPECT_EQ(ds.user_alt_ids, (std::vector<std::string>{"1", "2", "3", "4"}));
  EXPECT_EQ(compute_stats(ds).n_items_with_title, 7u);
  const auto files = detect_files(fixture("unisrec"));
  EXPECT_EQ(files.items.filename(), "Tiny.text");
  EXPECT_EQ(files.item2id.filename(), "Tiny.item2index");
  EXPECT_EQ(files.user2id.filename(), "Tiny.user2index");
  ASSERT_EQ(files.interactions.size(), 2u);
  // Named by one of its .inter files too.
  expect_tiny(load_dataset(fixture("unisrec/Tiny.test.inter"), no_kcore()));
}

TEST(BadInput, UniSRecSkipsAreCounted) {
  const Dataset ds = load_dataset(fixture("bad_unisrec"), no_kcore());
  EXPECT_EQ(ds.user_ids, (std::vector<std::string>{"u1", "u2", "u3"}));
  EXPECT_EQ(seq_ids(ds, 0), "a1 a2 a3 a4");
  EXPECT_EQ(seq_ids(ds, 1), "a1 a2 a5");  // index 99 is not in Bad.item2index
  EXPECT_EQ(seq_ids(ds, 2), "a4 a1 a4 a5");
  EXPECT_EQ(ds.items[0].title, "One");
  expect_issue(ds, "unknown_item", 1, 3, "Bad.test.inter");
  expect_issue(ds, "unknown_user", 1, 4, "Bad.valid.inter");
  expect_issue(ds, "malformed_line", 1, 5, "Bad.item2index");
  expect_issue(ds, "meta_not_in_dataset", 1, 0, "Bad.text");
  expect_issue(ds, "repeat_interaction", 1, 5, "Bad.test.inter");
  EXPECT_EQ(find_issue(ds.issues, "unpaired_user"), nullptr);  // user 9's test row goes with its valid row
  LoadOptions strict = no_kcore();
  strict.strict = true;
  try {
    load_dataset(fixture("bad_unisrec"), strict);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_TRUE(e.file().ends_with("Bad.item2index")) << e.file();
    EXPECT_EQ(e.line(), 5u);
  }
}

// Every prefix of every fixture file (and a few byte flips) either loads or gives InputError:
// never a crash, never another exception.
TEST(BadInput, DamagedFilesNeverCrash) {
  std::size_t n_loaded = 0, n_errors = 0;
  for (const std::string dir : {"lcrec", "recbole", "raw", "csv", "unisrec"}) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(fixture(dir))) files.push_back(e.path());
    for (const auto& victim : files) {
      const std::string bytes = test::read_file(victim);
      std::vector<std::string> variants;
      for (std::size_t cut = 0; cut < bytes.size(); cut += 5) variants.push_back(bytes.substr(0, cut));
      for (std::size_t at = 0; at < bytes.size(); at += 11) {
        std::string flipped = bytes;
        flipped[at] = static_cast<char>(flipped[at] ^ (at % 2 ? 0x22 : 0x7B));  // '"' or '{' noise
        variants.push_back(flipped);
      }
      TempDir tmp("damaged");
      for (const auto& f : files) std::filesystem::copy_file(f, tmp / f.filename().string());
      for (const auto& v : variants) {
        test::write_file(tmp / victim.filename().string(), v);
        try {
          const Dataset ds = load_dataset(tmp.path(), no_kcore());
          ++n_loaded;
          for (const auto& seq : ds.sequences) {
            ASSERT_GE(seq.size(), kMinUserItems);
            for (const ItemIndex i : seq) ASSERT_LT(static_cast<std::size_t>(i), ds.n_items());
          }
        } catch (const InputError&) {
          ++n_errors;
        }
      }
    }
  }
  EXPECT_GT(n_loaded, 100u);
  EXPECT_GT(n_errors, 100u);
}

}  // namespace
}  // namespace lrgd::data
