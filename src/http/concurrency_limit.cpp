#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>

#include <fmt/format.h>

#include "errand/detail/thread_annotations.hpp"
#include "errand/guard/adaptive_limit.hpp"
#include "errand/http/middleware.hpp"
#include "exchange.hpp"

namespace errand::http::mw {

namespace {

struct Slots {
  explicit Slots(std::optional<guard::AdaptiveLimit> a) : adaptive(a) {}
  errand::detail::Mutex mu;
  std::condition_variable_any freed;
  std::size_t in_flight ERRAND_GUARDED_BY(mu) = 0;
  std::optional<guard::AdaptiveLimit> adaptive ERRAND_GUARDED_BY(mu);

  std::size_t adaptive_limit() {
    const errand::detail::MutexLock lock(mu);
    return adaptive ? adaptive->limit() : 0;
  }
};

}  // namespace

Handler concurrency_limit(ConcurrencyLimitOptions options) {
  if (options.max_in_flight == 0) {
    throw std::invalid_argument("concurrency_limit: max_in_flight must be at least 1");
  }
  std::optional<guard::AdaptiveLimit> adaptive;
  if (options.adaptive) {
    if (options.max_wait.count() > 0) {
      throw std::invalid_argument(
          "concurrency_limit: an adaptive limit sheds at once (no max_wait)");
    }
    if (options.min_in_flight == 0 || options.min_in_flight > options.max_in_flight) {
      throw std::invalid_argument(
          "concurrency_limit: min_in_flight must be within 1..max_in_flight");
    }
    adaptive.emplace(guard::AdaptiveLimit::Options{
        .min_limit = options.min_in_flight,
        .max_limit = options.max_in_flight,
        .initial_limit =
            std::clamp<std::size_t>(20, options.min_in_flight, options.max_in_flight)});
  }
  auto slots = std::make_shared<Slots>(adaptive);
  observe::Counter* rejected = nullptr;
  observe::Gauge* holding = nullptr;
  observe::Gauge* limit_gauge = nullptr;
  if (options.metrics != nullptr) {
    rejected = &options.metrics
                    ->counter("concurrency_rejected_total",
                              "Requests answered 503 by a concurrency limiter", {"limiter"})
                    .with({options.name});
    holding = &options.metrics
                   ->gauge("concurrency_in_flight",
                           "Requests holding a slot of a concurrency limiter", {"limiter"})
                   .with({options.name});
    limit_gauge =
        &options.metrics
             ->gauge("concurrency_limit",
                     "The limit of a concurrency limiter (an adaptive one moves)", {"limiter"})
             .with({options.name});
    limit_gauge->set(
        static_cast<double>(options.adaptive ? slots->adaptive_limit() : options.max_in_flight));
  }
  return [slots, rejected, holding, limit_gauge, opts = std::move(options)](Context& c) {
    std::size_t admitted_with = 0;
    std::size_t limit = opts.max_in_flight;
    {
      errand::detail::MutexLock lock(slots->mu);
      if (slots->adaptive) limit = slots->adaptive->limit();
      const auto has_room = [&]() ERRAND_REQUIRES(slots->mu) { return slots->in_flight < limit; };
      bool ok = has_room();
      if (!ok && opts.max_wait.count() > 0 && detail::ContextAccess::exchange(c).blocking) {
        ok = lock.wait_for(slots->freed, c.stop_token(), opts.max_wait, has_room);
      }
      if (!ok) {
        lock.unlock();
        if (rejected != nullptr) rejected->inc();
        c.set_header("Retry-After", fmt::format("{}", opts.retry_after.count()));
        c.abort_with_error(503, "concurrency_limited",
                           fmt::format("more than {} requests in flight here; retry later", limit));
        return;
      }
      admitted_with = ++slots->in_flight;
    }
    if (holding != nullptr) holding->add(1);
    // The slot is held until the answer: for a deferred response, past the
    // chain's return. Released even if the chain throws.
    // An adaptive limit times from the request's arrival, not its admission:
    // the wait before the chain ran (the I/O thread, the blocking pool's
    // queue) is queueing the limit exists to keep short.
    const auto arrived = detail::ContextAccess::exchange(c).arrived;
    auto release = [slots, holding, limit_gauge, arrived, admitted_with](Context& /*c*/) {
      if (holding != nullptr) holding->add(-1);
      std::optional<std::size_t> new_limit;
      {
        const errand::detail::MutexLock lock(slots->mu);
        --slots->in_flight;
        if (slots->adaptive) {
          new_limit =
              slots->adaptive->sample(std::chrono::steady_clock::now() - arrived, admitted_with);
        }
      }
      if (new_limit && limit_gauge != nullptr) limit_gauge->set(static_cast<double>(*new_limit));
      slots->freed.notify_one();
    };
    const detail::AfterScope guard(c, release);
    c.next();
  };
}

}  // namespace errand::http::mw
