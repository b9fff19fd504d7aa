// Gin:    go sendWelcomeEmail(c.Copy()); c.JSON(202, ...)
// errand: the handler stores a durable `email.send` task under the request's
//         trace and answers at once; a worker delivers it over SMTP, retrying
//         with backoff while the mail server is down. Nothing is lost if the
//         process dies between the answer and the send.
//
//   SMTP_HOST=127.0.0.1 SMTP_PORT=2525 PORT=8080 build/debug/examples/errand_example_async_email
//   curl -s localhost:8080/register -d '{"email":"ada@example.org","name":"Ada"}'
#include <boost/describe.hpp>
#include <errand/app/builtin_tasks.hpp>
#include <errand/errand.hpp>

#include "../example_env.hpp"

struct Registration {
  std::string email;
  std::string name;

  void validate() const {  // 400 naming the field, before anything is stored
    if (email.find('@') == std::string::npos)
      throw errand::json::BindError("email", "field 'email' is not an address");
    if (name.empty() || name.size() > 100)
      throw errand::json::BindError("name", "field 'name' must be 1-100 characters");
  }
};
BOOST_DESCRIBE_STRUCT(Registration, (), (email, name))

int main() {
  errand::App app(example::options("async_email"));
  errand::app::register_email_send(
      app.tasks(), {.host = example::env_or("SMTP_HOST", "127.0.0.1"),
                    .port = static_cast<std::uint16_t>(example::env_int("SMTP_PORT", 25, 1, 65535)),
                    .from = "welcome@example.org"});

  app.http().post("/register", [&](errand::http::Context& c) {
    const auto in = c.bind<Registration>();
    // ... store the user ...
    const auto task = app.enqueue(c, "email.send",
                                  {{"to", {in.email}},
                                   {"subject", "Welcome, " + in.name},
                                   {"body", "Hello " + in.name + ",\n\nthanks for signing up.\n"}});
    c.json(202, {{"status", "registered"}, {"email_task", task.id}});
  });
  return app.run();
}
