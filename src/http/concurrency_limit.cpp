#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>

#include "errand/detail/thread_annotations.hpp"
#include "errand/http/middleware.hpp"
#include "exchange.hpp"

namespace errand::http::mw {

namespace {

struct Slots {
  errand::detail::Mutex mu;
  std::condition_variable_any freed;
  std::size_t in_flight ERRAND_GUARDED_BY(mu) = 0;
};

}  // namespace

Handler concurrency_limit(ConcurrencyLimitOptions options) {
  if (options.max_in_flight == 0) {
    throw std::invalid_argument("concurrency_limit: max_in_flight must be at least 1");
  }
  auto slots = std::make_shared<Slots>();
  observe::Counter* rejected = nullptr;
  observe::Gauge* holding = nullptr;
  if (options.metrics != nullptr) {
    rejected = &options.metrics
                    ->counter("concurrency_rejected_total",
                              "Requests answered 503 by a concurrency limiter", {"limiter"})
                    .with({options.name});
    holding = &options.metrics
                   ->gauge("concurrency_in_flight",
                           "Requests holding a slot of a concurrency limiter", {"limiter"})
                   .with({options.name});
  }
  return [slots, rejected, holding, opts = std::move(options)](Context& c) {
    {
      errand::detail::MutexLock lock(slots->mu);
      const auto has_room = [&]() ERRAND_REQUIRES(slots->mu) {
        return slots->in_flight < opts.max_in_flight;
      };
      bool ok = has_room();
      if (!ok && opts.max_wait.count() > 0 && detail::ContextAccess::exchange(c).blocking) {
        ok = lock.wait_for(slots->freed, c.stop_token(), opts.max_wait, has_room);
      }
      if (!ok) {
        lock.unlock();
        if (rejected != nullptr) rejected->inc();
        c.set_header("Retry-After", fmt::format("{}", opts.retry_after.count()));
        c.abort_with_error(
            503, "concurrency_limited",
            fmt::format("more than {} requests in flight here; retry later", opts.max_in_flight));
        return;
      }
      ++slots->in_flight;
    }
    if (holding != nullptr) holding->add(1);
    // The slot is held until the answer: for a deferred response, past the
    // chain's return. Released even if the chain throws.
    auto release = [slots, holding](Context& /*c*/) {
      if (holding != nullptr) holding->add(-1);
      {
        const errand::detail::MutexLock lock(slots->mu);
        --slots->in_flight;
      }
      slots->freed.notify_one();
    };
    const detail::AfterScope guard(c, release);
    c.next();
  };
}

}  // namespace errand::http::mw
