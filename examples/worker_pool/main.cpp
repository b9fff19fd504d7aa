// Gin:    jobs := make(chan Job, 1000); results := make(chan Result, 1000)
//         for w := 1; w <= 3; w++ { go worker(jobs, results) }
// errand: the bounded channel is a queue with a limit on waiting tasks, the
//         fixed pool is that queue's 3 worker threads, and the results channel
//         is the store: every job's result is kept and looked up by id. Jobs
//         survive a restart; a full queue answers 503 instead of blocking.
//
//   curl -s localhost:8080/jobs -d '{"numbers":[1,2,3]}'      # 202 {"ids":[...]}
//   curl -s 'localhost:8080/results?ids=01J...,01J...'        # every result, and how many are
//   pending
#include <algorithm>
#include <atomic>
#include <thread>

#include <boost/describe.hpp>
#include <boost/json/parse.hpp>
#include <errand/errand.hpp>

#include "../example_env.hpp"

struct Job {
  std::int64_t n = 0;
};
BOOST_DESCRIBE_STRUCT(Job, (), (n))

struct Jobs {
  std::vector<std::int64_t> numbers;
  void validate() const {
    if (numbers.empty() || numbers.size() > 1000) {
      throw errand::json::BindError("numbers", "field 'numbers' must hold 1 to 1000 numbers");
    }
  }
};
BOOST_DESCRIBE_STRUCT(Jobs, (), (numbers))

int main() {
  auto options = example::options("worker_pool");
  options.tasks.queues = {{.name = "pool", .concurrency = 3}};  // the fixed pool
  options.tasks.queue_max_waiting = {{"pool", 10'000}};         // the bounded channel
  errand::App app(options);

  std::atomic<int> running{0};
  std::atomic<int> most{0};  // the pool's size is a promise: the test checks it
  const auto square = app.tasks().handle<Job>(
      "square",
      [&](errand::tasks::TaskContext& t, const Job& job) {
        const int now = ++running;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        t.sleep_for(std::chrono::milliseconds(20));  // the slow part
        --running;
        return errand::tasks::Outcome::done({{"n", job.n}, {"square", job.n * job.n}});
      },
      {.queue = "pool"});

  auto& r = app.http();
  r.post("/jobs",
         [&](errand::http::Context& c) {
           const auto in = c.bind<Jobs>();
           std::vector<errand::tasks::TaskSpec> specs;
           for (const auto n : in.numbers) {
             specs.push_back(errand::tasks::spec(square, Job{n}, errand::from_request(c)));
           }
           // One transaction for the whole batch; 503 queue_full when the pool is swamped.
           const auto stored = app.tasks().enqueue_batch(specs);
           boost::json::array ids;
           for (const auto& e : stored) ids.emplace_back(e.id);
           c.json(202, {{"ids", std::move(ids)}});
         },
         {.blocking = true});

  // Fan-in: collect whatever has finished; the caller polls until pending is 0.
  r.get("/results",
        [&](errand::http::Context& c) {
          const std::string ids(c.query("ids").value_or(""));
          if (ids.empty() || std::count(ids.begin(), ids.end(), ',') >= 1000) {
            throw errand::http::Error(400, "invalid_query",
                                      "ids: 1 to 1000 job ids, comma-separated");
          }
          boost::json::array results;
          std::size_t pending = 0;
          for (std::size_t pos = 0; pos < ids.size();) {
            const auto comma = std::min(ids.find(',', pos), ids.size());
            const auto id = ids.substr(pos, comma - pos);
            pos = comma + 1;
            const auto task = app.store().get(id);
            if (!task) throw errand::http::Error(404, "job_not_found", "no job " + id);
            if (task->state != errand::store::TaskState::succeeded) {
              ++pending;
              continue;
            }
            results.push_back(boost::json::parse(task->result.value_or("null")));
          }
          c.json(200, {{"results", std::move(results)}, {"pending", pending}});
        },
        {.blocking = true});

  r.get("/stats", [&](errand::http::Context& c) {
    c.json(200, {{"max_concurrent", most.load()}, {"workers", 3}});
  });
  return app.run();
}
