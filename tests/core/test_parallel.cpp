#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "lrgd/parallel.h"

namespace {

// Every index runs exactly once, on as many threads as asked (never more than tasks).
TEST(ParallelFor, EachIndexOnceOnTheThreadsAsked) {
  for (const int threads : {1, 3, 0}) {
    std::vector<std::atomic<int>> hits(1000);
    std::mutex m;
    std::set<std::thread::id> ids;
    lrgd::parallel_for(hits.size(), threads, [&](std::size_t i) {
      ++hits[i];
      std::lock_guard lock(m);
      ids.insert(std::this_thread::get_id());
    });
    for (const auto& h : hits) {
      ASSERT_EQ(h.load(), 1) << threads << " threads";
    }
    if (threads > 0) {
      EXPECT_LE(ids.size(), static_cast<std::size_t>(threads));
    }
  }
  std::atomic<int> calls{0};
  lrgd::parallel_for(0, 4, [&](std::size_t) { ++calls; });
  lrgd::parallel_for(2, 8, [&](std::size_t) { ++calls; });
  EXPECT_EQ(calls.load(), 2);
}

// An exception in a worker thread reaches the caller (instead of std::terminate), and no
// new index starts after it: on one thread exactly the indices up to the throw ran; on four,
// with tasks of 1 ms, far fewer than all of them (the loop would take 250 ms).
TEST(ParallelFor, AnExceptionReachesTheCallerAndStopsTheLoop) {
  std::atomic<int> started{0};
  const auto throw_at_10 = [&](std::size_t i) {
    ++started;
    if (i == 10) throw std::runtime_error("task 10");
  };
  EXPECT_THROW(lrgd::parallel_for(1000, 1, throw_at_10), std::runtime_error);
  EXPECT_EQ(started.load(), 11);
  started = 0;
  EXPECT_THROW(lrgd::parallel_for(1000, 4,
                                  [&](std::size_t i) {
                                    throw_at_10(i);
                                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                                  }),
               std::runtime_error);
  EXPECT_LT(started.load(), 1000);
}

}  // namespace
