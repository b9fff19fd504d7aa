# The Sidekiq peer of bench/compare/run (Debian's ruby-sidekiq), written for
# the comparison: one no-op job class. REDIS_URL names the server.
require "sidekiq"

class NoopJob
  include Sidekiq::Job
  def perform(_i); end
end
