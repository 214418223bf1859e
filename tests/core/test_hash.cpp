#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "lrgd/error.h"
#include "lrgd/hash.h"
#include "temp_dir.h"

namespace {

TEST(Hash, Sha256KnownVectors) {
  EXPECT_EQ(lrgd::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(lrgd::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Hash, IncrementalEqualsOneShotAndFile) {
  lrgd::Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.hex(), lrgd::sha256_hex("abc"));
  const lrgd::test::TempDir dir("hash");
  const auto p = dir / "abc.txt";
  std::ofstream(p) << "abc";
  EXPECT_EQ(lrgd::sha256_file(p), lrgd::sha256_hex("abc"));
  std::filesystem::remove(p);
  EXPECT_THROW(lrgd::sha256_file(p), lrgd::IoError);
}

}  // namespace
