// Queues: pause and resume each; the scheduled, retrying and dead tasks of
// the chosen queue; the periodic schedules with their last and next tick.
import { useState } from "preact/hooks";
import { get, post, query, type Queue, type Schedule, type Task, type TaskState } from "../api";
import { Head, Section, StateBadge, Time } from "../components/bits";
import { count, errorText, ms } from "../format";
import { usePoll } from "../poll";
import { href } from "../router";

function Waiting({ queue, state }: { queue: string; state: TaskState }) {
  const list = usePoll(
    (s) =>
      get<{ tasks: Task[]; next_cursor: string | null }>("/v1/tasks" + query({ queue, state, limit: 10 }), s),
    5000,
    [queue, state],
  );
  const tasks = list.data?.tasks ?? [];
  return (
    <div class="waiting" data-list={state}>
      <h3>
        <a href={href("tasks", { queue, state })}>{state}</a>
      </h3>
      {tasks.length === 0 ? (
        <p class="muted">
          {list.data?.next_cursor ? (
            <a href={href("tasks", { queue, state })}>none among the newest; look further…</a>
          ) : (
            "none"
          )}
        </p>
      ) : (
        <ul class="plain">
          {tasks.map((t) => (
            <li>
              <a class="mono" href={href(`tasks/${t.id}`)}>
                {t.id}
              </a>{" "}
              {t.type} — {state === "dead" ? t.last_error ?? "" : <>due <Time at={t.run_at} /></>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Queues() {
  const queues = usePoll((s) => get<{ queues: Queue[] }>("/v1/queues", s), 2000, []);
  const schedules = usePoll((s) => get<{ schedules: Schedule[] }>("/v1/schedules", s), 5000, []);
  const [chosen, setChosen] = useState("");
  const [note, setNote] = useState("");
  const list = queues.data?.queues ?? [];
  // Unless one was chosen: the first queue with something waiting to show.
  const shown =
    list.find((q) => q.name === chosen) ??
    list.find((q) => q.counts.scheduled + q.counts.retrying + q.counts.dead > 0) ??
    list[0];

  const toggle = async (q: Queue) => {
    try {
      await post(`/v1/queues/${encodeURIComponent(q.name)}/${q.paused ? "resume" : "pause"}`);
      setNote("");
      queues.refresh();
    } catch (e) {
      setNote(`${q.paused ? "Resume" : "Pause"} of ${q.name} failed: ${errorText(e)}`);
    }
  };

  return (
    <div class="page">
      <Section title="Queues">
        {note && <p class="error" role="alert">{note}</p>}
        <div class="table-wrap">
          <table>
            <Head cols={["Queue", "Status", "Pending#", "Active#", "Scheduled#", "Retrying#", "Dead#", "Action"]} />
            <tbody>
              {list.map((q) => (
                <tr data-queue={q.name} class={shown?.name === q.name ? "chosen" : ""}>
                  <th scope="row">
                    <button class="link" onClick={() => setChosen(q.name)} aria-pressed={shown?.name === q.name}>
                      {q.name}
                    </button>
                  </th>
                  <td data-status>{q.paused ? <span class="badge paused">paused</span> : "running"}</td>
                  <td class="num">{count(q.counts.pending)}</td>
                  <td class="num">{count(q.counts.active)}</td>
                  <td class="num">{count(q.counts.scheduled)}</td>
                  <td class="num">{count(q.counts.retrying)}</td>
                  <td class="num">{count(q.counts.dead)}</td>
                  <td>
                    <button onClick={() => toggle(q)} aria-label={`${q.paused ? "Resume" : "Pause"} ${q.name}`}>
                      {q.paused ? "Resume" : "Pause"}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>

      {shown && (
        <Section title={`Waiting in ${shown.name}`}>
          <div class="three">
            <Waiting queue={shown.name} state="scheduled" />
            <Waiting queue={shown.name} state="retrying" />
            <Waiting queue={shown.name} state="dead" />
          </div>
        </Section>
      )}

      <Section title="Schedules">
        {(schedules.data?.schedules ?? []).length === 0 ? (
          <p class="muted">No periodic schedules (errand serve --schedule, or Runtime::every/cron).</p>
        ) : (
          <div class="table-wrap">
            <table>
              <Head cols={["Name", "When", "Type", "Queue", "Last fired", "Next", "Nodes"]} />
              <tbody>
                {schedules.data!.schedules.map((s) => (
                  <tr data-schedule={s.name}>
                    <th scope="row">{s.name}</th>
                    <td class="mono">{s.kind === "every" ? `every ${ms(s.every_ms ?? 0)}` : `cron ${s.cron}`}</td>
                    <td>{s.type}</td>
                    <td>{s.queue}</td>
                    <td>
                      <Time at={s.last_fired_at} />
                    </td>
                    <td>
                      <Time at={s.next_fire_at} />
                    </td>
                    <td>{s.nodes.join(", ")}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
      <p class="muted small">
        States: <StateBadge state="scheduled" /> waits for its time, <StateBadge state="retrying" /> failed and
        waits for its backoff, <StateBadge state="dead" /> used up its attempts.
      </p>
    </div>
  );
}
