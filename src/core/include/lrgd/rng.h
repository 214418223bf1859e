// Seeded random numbers that are identical on every machine and standard library.
// std::uniform_int_distribution and friends are implementation-defined, so lrgd never
// uses them for anything that ends up in a result.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

namespace lrgd {

// xoshiro256** seeded through splitmix64.
class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0);
  // Derives an independent stream from a seed and labels (e.g. seed, "candidates", user).
  static Rng derive(std::uint64_t seed, std::string_view label, std::uint64_t index = 0);

  std::uint64_t next_u64();
  // Uniform integer in [0, n), unbiased (Lemire's method). n must be > 0.
  std::uint64_t uniform(std::uint64_t n);
  // Uniform double in [0, 1) with 53 random bits.
  double uniform01();
  // Standard normal (Box-Muller, uses two uniforms per call; no cached state).
  double normal();

  template <class T>
  void shuffle(std::span<T> values) {
    for (std::size_t i = values.size(); i > 1; --i) {
      std::size_t j = static_cast<std::size_t>(uniform(i));
      std::swap(values[i - 1], values[j]);
    }
  }

 private:
  std::uint64_t s_[4];
};

// 64-bit FNV-1a of a string, for deriving seeds from labels.
std::uint64_t hash64(std::string_view text);

}  // namespace lrgd
