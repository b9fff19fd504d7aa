-- POST /echo with a small JSON body: bind<T>() and json() on every request.
wrk.method = "POST"
wrk.body = '{"message":"hello, errand","n":42}'
wrk.headers["Content-Type"] = "application/json"
