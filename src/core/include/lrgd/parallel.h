// A parallel loop over task indices, on plain threads.
#pragma once

#include <cstddef>
#include <functional>

namespace lrgd {

// f(i) for every i in [0, n), on min(n, n_threads) threads (n_threads <= 0: the machine's
// hardware threads), the calling thread included. Indices are handed out one at a time, so
// tasks of uneven length balance. If f throws, no new index starts and the first exception
// is rethrown once every thread has stopped.
void parallel_for(std::size_t n, int n_threads, const std::function<void(std::size_t)>& f);

}  // namespace lrgd
