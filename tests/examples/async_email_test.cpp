// examples/async_email: POST /register answers at once; the welcome email
// reaches a real SMTP server, sent by a task that logs under the request's trace.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "examples/example_process.hpp"
#include "support/smtp_server.hpp"
#include "support/wait.hpp"

namespace errand::test {
namespace {

TEST(AsyncEmailExample, RegisterAnswersAtOnceAndTheEmailFollowsUnderTheSameTrace) {
  TempDir mail;
  SmtpServer smtp(mail.path());
  ASSERT_TRUE(smtp.ready()) << "python3-aiosmtpd did not start (scripts/bootstrap installs it)";
  ExampleProcess app("async_email",
                     {"SMTP_HOST=127.0.0.1", "SMTP_PORT=" + std::to_string(smtp.port())});
  ASSERT_NE(app.port(), 0) << app.log();

  const std::string trace_id = "0af7651916cd43dd8448eb211c80319c";
  const auto r = app.post("/register", R"({"email":"ada@example.org","name":"Ada"})",
                          {{"traceparent", "00-" + trace_id + "-b7ad6b7169203331-01"}});
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string task_id(r.json().at("email_task").as_string());

  ASSERT_TRUE(eventually([&] { return !smtp.messages().empty(); })) << app.log();
  const auto message = smtp.messages().front();
  EXPECT_NE(message.find("ada@example.org"), std::string::npos) << message;
  EXPECT_NE(message.find("Subject: Welcome, Ada"), std::string::npos) << message;
  EXPECT_NE(message.find("traceparent: 00-" + trace_id), std::string::npos) << message;

  // The task's own log lines carry the request's trace id.
  ASSERT_TRUE(
      eventually([&] { return app.log().find("\"task succeeded\"") != std::string::npos; }));
  bool traced = false;
  for (const auto& line : app.log_lines()) {
    if (line.find(task_id) == std::string::npos) continue;
    const auto v = boost::json::parse(line).as_object();
    EXPECT_EQ(v.at("trace_id").as_string(), trace_id) << line;
    traced = true;
  }
  EXPECT_TRUE(traced);

  // Bad input is refused before anything is stored.
  const auto bad = app.post("/register", R"({"email":"nobody","name":"X"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json().at("error").at("code").as_string(), "invalid_field");
  EXPECT_EQ(app.stop(), 0);
}

}  // namespace
}  // namespace errand::test
