# Sidekiq end to end: N no-op jobs are pushed first (push_bulk), then
# PROCESSES `sidekiq` processes (nodes) with CONCURRENCY threads each drain
# them. Timed by the jobs themselves, as errand and BullMQ are: from the first
# job's start to the last job's end, stamped inside each process (worker.rb).
# The driver only waits, untimed, for the queue to empty; then it stops the
# processes, whose graceful shutdown lets the running jobs finish and write
# their stamps.
# Usage: REDIS_URL=redis://127.0.0.1:PORT ruby drain.rb N CONCURRENCY [PROCESSES=1]
require "json"
require "tmpdir"
require "sidekiq"
require "sidekiq/api"
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
require_relative "worker"

n = Integer(ARGV[0])
concurrency = Integer(ARGV[1])
processes = Integer(ARGV[2] || 1)
Sidekiq.redis(&:flushdb)
(0...n).each_slice(1000) { |slice| Sidekiq::Client.push_bulk("class" => NoopJob, "args" => slice.map { |i| [i] }) }

Dir.mktmpdir("sidekiq-stamps") do |dir|
  pids = Array.new(processes) do
    Process.spawn({ "STAMPS_DIR" => dir }, "sidekiq", "-r", File.join(__dir__, "worker.rb"),
                  "-c", concurrency.to_s, out: File::NULL, err: File::NULL)
  end
  queue = Sidekiq::Queue.new("default")
  deadline = Time.now + 600
  until queue.size.zero?
    abort "sidekiq did not drain #{n} jobs in time (#{queue.size} left)" if Time.now > deadline
    sleep 0.005
  end
  pids.each { |pid| Process.kill("TERM", pid) }
  pids.each { |pid| Process.wait(pid) }
  rows = Dir[File.join(dir, "*.json")].map { |f| JSON.parse(File.read(f)) }.select { |r| r["ran"].positive? }
  ran = rows.sum { |r| r["ran"] }
  abort "sidekiq ran #{ran} of #{n} jobs" if ran < n
  elapsed = (rows.map { |r| r["last_ms"] }.max - rows.map { |r| r["first_ms"] }.min) / 1000.0
  puts JSON.generate(jobs_per_s: n / elapsed, jobs: n, ran: ran)
end
