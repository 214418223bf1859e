// Pooled HTTP connections with bounded retries (exponential backoff, jitter, Retry-After).
#include "openai/http_client.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "lrgd/error.h"
#include "lrgd/rng.h"

namespace lrgd::llm::openai {

namespace {

using Clock = std::chrono::steady_clock;

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Seconds as (sec, usec) for httplib's timeout setters.
std::pair<time_t, time_t> split_seconds(double s) {
  s = std::max(s, 0.001);
  const auto whole = static_cast<time_t>(s);
  const auto usec = static_cast<time_t>((s - static_cast<double>(whole)) * 1e6);
  return {whole, usec};
}

bool retryable_status(int status) { return status == 408 || status == 425 || status == 429 || status >= 500; }

// A short, single-line excerpt of a response body for error messages.
std::string excerpt(const std::string& body) {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error")) {
    const auto& e = j.at("error");
    if (e.is_object() && e.contains("message") && e.at("message").is_string())
      return e.at("message").get<std::string>();
    if (e.is_string()) return e.get<std::string>();
  }
  std::string s = body.substr(0, 200);
  std::replace(s.begin(), s.end(), '\n', ' ');
  if (body.size() > 200) s += "...";
  return s;
}

}  // namespace

Endpoint parse_endpoint(const std::string& url) {
  std::string rest;
  std::string scheme;
  if (starts_with(url, "http://")) {
    scheme = "http://";
  } else if (starts_with(url, "https://")) {
    scheme = "https://";
  } else {
    throw OptionError("endpoints", "'" + url + "' is not an http:// or https:// URL");
  }
  rest = url.substr(scheme.size());
  const auto slash = rest.find('/');
  const std::string hostport = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "" : rest.substr(slash);
  if (hostport.empty() || hostport.find_first_of("?#@ ") != std::string::npos) {
    throw OptionError("endpoints", "'" + url + "' has no valid host");
  }
  const auto colon = hostport.rfind(':');
  if (colon != std::string::npos && hostport.find(']') == std::string::npos) {
    const std::string port = hostport.substr(colon + 1);
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) || std::stoi(port) < 1 ||
        std::stoi(port) > 65535) {
      throw OptionError("endpoints", "'" + url + "' has an invalid port");
    }
  }
  if (path.find_first_of("?# ") != std::string::npos) {
    throw OptionError("endpoints", "'" + url + "': the base URL may not hold a query or fragment");
  }
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (ends_with(path, "/v1")) path.resize(path.size() - 3);
  return Endpoint{url, scheme + hostport, path};
}

double backoff_delay_s(const RetryPolicy& policy, int retry, double u01) {
  const double d = std::min(policy.backoff_cap_s, policy.backoff_base_s * std::ldexp(1.0, std::min(retry, 60)));
  return d * (0.5 + 0.5 * u01);
}

double parse_retry_after(const std::string& value) {
  if (value.empty()) return -1;
  char* end = nullptr;
  const double s = std::strtod(value.c_str(), &end);
  if (end != value.c_str() && *end == '\0') return std::isfinite(s) && s >= 0 ? s : -1;
  std::tm tm{};
  // IMF-fixdate, e.g. "Wed, 21 Oct 2015 07:28:00 GMT".
  const char* p = strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (p == nullptr) return -1;
  const std::time_t when = timegm(&tm);
  const std::time_t now = std::time(nullptr);
  return when > now ? static_cast<double>(when - now) : 0.0;
}

// One httplib client per endpoint, used by one thread at a time.
struct HttpPool::Connections {
  std::vector<std::unique_ptr<httplib::Client>> clients;
};

HttpPool::HttpPool(std::vector<Endpoint> endpoints, std::string api_key, Timeouts timeouts, RetryPolicy retry,
                   int max_in_flight)
    : endpoints_(std::move(endpoints)),
      api_key_(std::move(api_key)),
      timeouts_(timeouts),
      retry_(retry),
      in_flight_(std::clamp(max_in_flight, 1, 4096)) {
  // httplib parses "scheme://host:port" with a function-local static regex: build one
  // client here, on one thread, so that worker threads only ever read it.
  for (const auto& e : endpoints_) {
    httplib::Client probe(e.origin);
    if (!probe.is_valid()) throw OptionError("endpoints", "'" + e.url + "' cannot be used by the HTTP client");
  }
}

HttpPool::~HttpPool() = default;

std::unique_ptr<HttpPool::Connections> HttpPool::take_connections() {
  {
    std::lock_guard lock(pool_mutex_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return c;
    }
  }
  auto c = std::make_unique<Connections>();
  c->clients.resize(endpoints_.size());
  return c;
}

void HttpPool::give_back(std::unique_ptr<Connections> c) {
  std::lock_guard lock(pool_mutex_);
  idle_.push_back(std::move(c));
}

HttpResult HttpPool::request(const std::string& path, const nlohmann::json* body, const BodyCheck& check) {
  const std::uint64_t n = next_request_.fetch_add(1);
  return run(n, static_cast<std::size_t>(n % endpoints_.size()), true, path, body, check);
}

HttpResult HttpPool::request_on(std::size_t endpoint, const std::string& path, const nlohmann::json* body,
                                const BodyCheck& check) {
  const std::uint64_t n = next_request_.fetch_add(1);
  return run(n, endpoint % endpoints_.size(), false, path, body, check);
}

HttpResult HttpPool::run(std::uint64_t request_no, std::size_t first_endpoint, bool rotate, const std::string& path,
                         const nlohmann::json* body, const BodyCheck& check) {
  auto conns = take_connections();
  Rng rng = Rng::derive(retry_.seed, "openai-retry", request_no);
  const std::string payload = body ? body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : "";

  HttpResult result;
  std::size_t ep = first_endpoint;
  const int n_attempts_max = retry_.max_retries + 1;
  for (int attempt = 0; attempt < n_attempts_max; ++attempt) {
    const Endpoint& endpoint = endpoints_[ep];
    auto& client = conns->clients[ep];
    if (!client) {
      client = std::make_unique<httplib::Client>(endpoint.origin);
      const auto [cs, cu] = split_seconds(timeouts_.connect_s);
      const auto [rs, ru] = split_seconds(timeouts_.read_s);
      client->set_connection_timeout(cs, cu);
      client->set_read_timeout(rs, ru);
      client->set_write_timeout(rs, ru);
      client->set_keep_alive(true);
      if (!api_key_.empty()) client->set_bearer_token_auth(api_key_);
    }
    const std::string url_path = endpoint.root + path;
    const std::string where = (body ? "POST " : "GET ") + endpoint.origin + url_path;

    double retry_after = -1;
    bool retry = false;
    ++result.n_attempts;
    const auto t0 = Clock::now();
    // The body is read here, not by httplib, to bound its size and its total time: a server
    // that answers without end, or one byte a second, ends the attempt.
    std::string received;
    std::string cut;  // why the answer was cut off
    httplib::Result res = [&] {
      struct Slot {
        std::counting_semaphore<4096>& s;
        explicit Slot(std::counting_semaphore<4096>& sem) : s(sem) { s.acquire(); }
        ~Slot() { s.release(); }
      } slot(in_flight_);
      httplib::Request req;
      req.method = body ? "POST" : "GET";
      req.path = url_path;
      if (body) {
        req.headers.emplace("Content-Type", "application/json");
        req.body = payload;
      }
      req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
        if (received.size() + n > timeouts_.max_body_bytes) {
          cut = "response larger than " + std::to_string(timeouts_.max_body_bytes) + " bytes";
          return false;
        }
        if (std::chrono::duration<double>(Clock::now() - t0).count() > timeouts_.total_s) {
          cut = "response not complete after " + std::to_string(static_cast<int>(timeouts_.total_s)) + " s";
          return false;
        }
        received.append(data, n);
        return true;
      };
      return client->send(req);
    }();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();

    if (!res || !cut.empty()) {
      result.status = 0;
      result.error = where + ": " + (cut.empty() ? httplib::to_string(res.error()) + " error" : cut);
      retry = true;
      client.reset();  // drop the broken connection
    } else {
      res->body = std::move(received);
      result.status = res->status;
      if (res->status >= 200 && res->status < 300) {
        auto j = nlohmann::json::parse(res->body, nullptr, false);
        std::string problem;
        if (j.is_discarded()) {
          problem = "response is not JSON (" + std::to_string(res->body.size()) + " bytes: " + excerpt(res->body) + ")";
        } else if (check) {
          problem = check(j);
        }
        if (problem.empty()) {
          result.ok = true;
          result.body = std::move(j);
          result.wall_ms = ms;
          result.error.clear();
          break;
        }
        result.error = where + ": " + problem;
        retry = true;
      } else {
        result.error = where + ": HTTP " + std::to_string(res->status) + ": " + excerpt(res->body);
        retry = retryable_status(res->status);
        if (res->status == 429 || res->status == 503) {
          retry_after = parse_retry_after(res->get_header_value("Retry-After"));
        }
      }
    }
    ++failed_attempts_;
    if (!retry) break;
    if (attempt + 1 < n_attempts_max) {
      double delay = backoff_delay_s(retry_, attempt, rng.uniform01());
      if (retry_after >= 0) delay = std::max(delay, std::min(retry_after, retry_.retry_after_cap_s));
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      if (rotate) ep = (ep + 1) % endpoints_.size();
    }
  }
  give_back(std::move(conns));
  if (!result.ok) {
    result.error +=
        " (gave up after " + std::to_string(result.n_attempts) + (result.n_attempts == 1 ? " attempt)" : " attempts)");
  }
  return result;
}

}  // namespace lrgd::llm::openai
