// Internal to lrgd_llm_openai: endpoints, pooled HTTP connections and the retry loop.
// No httplib types appear here, so only http_client.cpp includes httplib.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <semaphore>
#include <string>
#include <vector>

namespace lrgd::llm::openai {

// "https://host:port/prefix/v1" → origin "https://host:port", root "/prefix".
struct Endpoint {
  std::string url;     // as configured
  std::string origin;  // scheme://host[:port]
  std::string root;    // path prefix without a trailing "/" or "/v1" ("" for none)
};

// Throws OptionError("endpoints") unless url is http(s)://host[:port][/path].
Endpoint parse_endpoint(const std::string& url);

struct RetryPolicy {
  int max_retries = 4;
  double backoff_base_s = 0.5;
  double backoff_cap_s = 30;
  double retry_after_cap_s = 120;
  std::uint64_t seed = 0;
};

struct Timeouts {
  double connect_s = 10;
  double read_s = 120;   // longest silence
  double total_s = 600;  // the whole answer
  std::uint64_t max_body_bytes = 64ull << 20;
};

// Outcome of one request after retries.
struct HttpResult {
  bool ok = false;
  nlohmann::json body;  // parsed JSON body when ok
  int status = 0;       // last HTTP status (0: no response)
  int n_attempts = 0;
  double wall_ms = 0;  // duration of the successful attempt
  std::string error;   // when !ok: what failed, where, and after how many attempts
};

// Checks a 200 answer's JSON; returns an error message if it is unusable (then retried).
using BodyCheck = std::function<std::string(const nlohmann::json&)>;

// Delay before retry `retry` (0-based): uniform in [d/2, d], d = min(cap, base * 2^retry),
// drawn from `u01` in [0, 1).
double backoff_delay_s(const RetryPolicy& policy, int retry, double u01);

// Parses a Retry-After value: seconds ("2", "1.5") or an HTTP date. Returns -1 if absent
// or unparseable, else the seconds to wait (>= 0).
double parse_retry_after(const std::string& value);

// Sends requests to a set of endpoints with pooled keep-alive connections, at most
// `max_in_flight` attempts at a time over all threads, retrying per RetryPolicy.
// Thread-safe.
class HttpPool {
 public:
  HttpPool(std::vector<Endpoint> endpoints, std::string api_key, Timeouts timeouts, RetryPolicy retry,
           int max_in_flight);
  ~HttpPool();
  HttpPool(const HttpPool&) = delete;
  HttpPool& operator=(const HttpPool&) = delete;

  // POSTs `body` (null: GET) to root + path on the endpoint chosen round-robin; a retry goes
  // to the next endpoint. Never throws for network or server failures.
  HttpResult request(const std::string& path, const nlohmann::json* body, const BodyCheck& check = {});
  // As request(), on the given endpoint only.
  HttpResult request_on(std::size_t endpoint, const std::string& path, const nlohmann::json* body,
                        const BodyCheck& check = {});

  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  // Attempts that failed (network, timeout, size, status, unusable body), over the pool's life.
  std::uint64_t failed_attempts() const { return failed_attempts_.load(); }

 private:
  struct Connections;
  HttpResult run(std::uint64_t request_no, std::size_t first_endpoint, bool rotate, const std::string& path,
                 const nlohmann::json* body, const BodyCheck& check);
  std::unique_ptr<Connections> take_connections();
  void give_back(std::unique_ptr<Connections> c);

  std::vector<Endpoint> endpoints_;
  std::string api_key_;
  Timeouts timeouts_;
  RetryPolicy retry_;
  std::counting_semaphore<4096> in_flight_;
  std::atomic<std::uint64_t> next_request_{0};
  std::atomic<std::uint64_t> failed_attempts_{0};
  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<Connections>> idle_;
};

}  // namespace lrgd::llm::openai
