# The Sidekiq peer of bench/compare/run (Debian's ruby-sidekiq), written for
# the comparison: one no-op job class. REDIS_URL names the server.
#
# Each job stamps, in memory, when this process's first job started and its
# last one ended; with STAMPS_DIR set the process writes them, with how many
# jobs it ran, to STAMPS_DIR/<pid>.json as it exits (after Sidekiq's graceful
# shutdown has let the running jobs finish). drain.rb times Sidekiq by them,
# as errand and BullMQ are timed by their own first and last job.
require "json"
require "sidekiq"

module Stamps
  @lock = Mutex.new
  @ran = 0
  @first_ms = nil
  @last_ms = nil

  def self.now_ms = Process.clock_gettime(Process::CLOCK_REALTIME, :float_millisecond)

  def self.started
    t = now_ms
    @lock.synchronize { @first_ms = t if @first_ms.nil? || t < @first_ms }
  end

  def self.ended
    t = now_ms
    @lock.synchronize do
      @ran += 1
      @last_ms = t if @last_ms.nil? || t > @last_ms
    end
  end

  def self.write(dir)
    File.write(File.join(dir, "#{Process.pid}.json"),
               JSON.generate(first_ms: @first_ms, last_ms: @last_ms, ran: @ran))
  end
end

at_exit { Stamps.write(ENV["STAMPS_DIR"]) if ENV["STAMPS_DIR"] && Sidekiq.server? }

class NoopJob
  include Sidekiq::Job
  def perform(_i)
    Stamps.started
    Stamps.ended
  end
end
