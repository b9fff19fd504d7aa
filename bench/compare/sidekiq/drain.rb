# Sidekiq end to end: N no-op jobs are pushed first (push_bulk), then a
# `sidekiq` process with CONCURRENCY threads drains them. The rate is taken
# from the first job taken to the last, so the process's start-up is not
# counted. Sidekiq writes its `processed` stat only every few seconds, so the
# clock stops when the queue is empty: the last few jobs fetched may still be
# running, which with no-op jobs and a few threads is well under a millisecond.
# With PROCESSES, that many `sidekiq` processes (nodes) drain together.
# Usage: REDIS_URL=redis://127.0.0.1:PORT ruby drain.rb N CONCURRENCY [PROCESSES=1]
require "json"
require "sidekiq"
require "sidekiq/api"
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
require_relative "worker"

n = Integer(ARGV[0])
concurrency = Integer(ARGV[1])
processes = Integer(ARGV[2] || 1)
Sidekiq.redis(&:flushdb)
(0...n).each_slice(1000) { |slice| Sidekiq::Client.push_bulk("class" => NoopJob, "args" => slice.map { |i| [i] }) }

pids = Array.new(processes) do
  Process.spawn("sidekiq", "-r", File.join(__dir__, "worker.rb"), "-c", concurrency.to_s,
                out: File::NULL, err: File::NULL)
end
queue = Sidekiq::Queue.new("default")
first_at = nil
first_count = 0
deadline = Time.now + 600
loop do
  taken = n - queue.size
  now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  if first_at.nil? && taken.positive?
    first_at = now
    first_count = taken
  end
  if taken >= n && first_at
    elapsed = now - first_at
    puts JSON.generate(jobs_per_s: (n - first_count) / elapsed, jobs: n)
    break
  end
  abort "sidekiq did not drain #{n} jobs in time (#{taken} taken)" if Time.now > deadline
  sleep 0.005
end
pids.each { |pid| Process.kill("TERM", pid) }
pids.each { |pid| Process.wait(pid) }
