// Gin:    var wg sync.WaitGroup; errs := make(chan error, 3)
//         for _, f := range []func(){profile, orders, recommendations} { wg.Add(1); go ... }
//         wg.Wait(); close(errs)          // and collect every error, not just the first
// errand, two ways:
//   * in the request: three std::async calls on a blocking route, every
//     result and every error collected (GET /profile/:user);
//   * durable: a task group — three tasks that run on any worker, then one
//     completion task that receives every result and every error, even if
//     the process restarts in between (POST /reports/:user).
//
//   curl -s localhost:8080/profile/ada      # 3 results, no errors
//   curl -s localhost:8080/profile/bob      # 2 results, 1 error
//   curl -s -X POST localhost:8080/reports/bob   # 202 {"completion_id":...}; then GET
//   /v1/tasks/<id>
#include <future>
#include <stdexcept>
#include <thread>

#include <boost/describe.hpp>
#include <errand/app/task_api.hpp>
#include <errand/errand.hpp>

#include "../example_env.hpp"

namespace {

// One backend call; bob has no recommendations.
boost::json::value fetch(const std::string& part, const std::string& user) {
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (part == "recommendations" && user == "bob") {
    throw std::runtime_error("recommendations service: no history for " + user);
  }
  return {{"part", part}, {"user", user}};
}

const std::vector<std::string> kParts = {"profile", "orders", "recommendations"};

}  // namespace

struct Part {
  std::string part;
  std::string user;
};
BOOST_DESCRIBE_STRUCT(Part, (), (part, user))

int main() {
  errand::App app(example::options("fan_out"));

  app.http().get("/profile/:user",
                 [](errand::http::Context& c) {
                   const std::string user(c.param("user"));
                   std::vector<std::future<boost::json::value>> calls;
                   for (const auto& part : kParts) {  // fan out: all three at once
                     calls.push_back(std::async(std::launch::async, fetch, part, user));
                   }
                   boost::json::array results;
                   boost::json::array errors;
                   for (std::size_t i = 0; i < calls.size(); ++i) {  // fan in: wait for every one
                     try {
                       results.push_back(calls[i].get());
                     } catch (const std::exception& e) {
                       errors.push_back({{"part", kParts[i]}, {"error", e.what()}});
                     }
                   }
                   c.json(200, {{"results", std::move(results)}, {"errors", std::move(errors)}});
                 },
                 {.blocking = true});

  // The durable version: members retry on their own; a failure that will not
  // heal (PermanentFailure) ends that member dead, and the completion still runs.
  const auto report_part =
      app.tasks().handle<Part>("report.part", [](errand::tasks::TaskContext&, const Part& p) {
        try {
          return errand::tasks::Outcome::done(fetch(p.part, p.user));
        } catch (const std::runtime_error& e) {
          throw errand::tasks::PermanentFailure(e.what());
        }
      });
  app.tasks().handle_raw("report.assemble", [](errand::tasks::TaskContext& t) {
    // payload: {"group", "payload", "members": [{"id","type","state","result","error"}]}
    boost::json::array results;
    boost::json::array errors;
    for (const auto& m : t.payload().at("members").as_array()) {
      if (m.at("state") == "succeeded") {
        results.push_back(m.at("result"));
      } else {
        errors.push_back({{"task", m.at("id")}, {"error", m.at("error")}});
      }
    }
    return errand::tasks::Outcome::done(
        {{"results", std::move(results)}, {"errors", std::move(errors)}});
  });
  app.http().post(
      "/reports/:user",
      [&](errand::http::Context& c) {
        const std::string user(c.param("user"));
        std::vector<errand::tasks::TaskSpec> members;
        for (const auto& part : kParts) {
          members.push_back(
              errand::tasks::spec(report_part, Part{part, user}, errand::from_request(c)));
        }
        const auto group = app.tasks().enqueue_group(
            members, errand::tasks::TaskSpec{"report.assemble", {}, errand::from_request(c)});
        c.json(202, {{"group_id", group.group_id}, {"completion_id", group.completion_id}});
      },
      {.blocking = true});

  errand::app::install_task_api(app.http(), app.tasks());  // GET /v1/tasks/<completion_id>
  return app.run();
}
