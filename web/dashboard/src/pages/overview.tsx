// Overview: every queue's counts, live charts of the last 15 minutes, the
// nodes and their busy workers, and open circuits. One request per endpoint
// every 2 s (stats every 5 s: nodes publish theirs with their heartbeat).
import { useState } from "preact/hooks";
import { get, STATES, type Circuit, type NodeInfo, type Queue, type Stats } from "../api";
import { Chart } from "../components/chart";
import { Head, Section, Time } from "../components/bits";
import { count } from "../format";
import { usePoll } from "../poll";
import { href } from "../router";

export function Overview() {
  const queues = usePoll((s) => get<{ queues: Queue[] }>("/v1/queues", s), 2000, []);
  const nodes = usePoll((s) => get<{ nodes: NodeInfo[] }>("/v1/nodes", s), 2000, []);
  const circuits = usePoll((s) => get<{ circuits: Circuit[] }>("/v1/circuits", s), 5000, []);
  const stats = usePoll((s) => get<Stats>("/v1/stats?window=15m", s), 5000, []);
  const [chosen, setChosen] = useState<string>("");

  const statQueues = stats.data?.queues ?? [];
  const shown = statQueues.find((q) => q.name === chosen) ?? statQueues[0];
  const open = (circuits.data?.circuits ?? []).filter((c) => c.state !== "closed");

  return (
    <div class="page">
      <Section title="Queues">
        <div class="table-wrap">
          <table class="queues">
            <thead>
              <tr>
                <th scope="col">Queue</th>
                {STATES.map((s) => (
                  <th scope="col" class="num">
                    {s}
                  </th>
                ))}
                <th scope="col" class="num">busy / workers</th>
              </tr>
            </thead>
            <tbody>
              {(queues.data?.queues ?? []).map((q) => (
                <tr data-queue={q.name}>
                  <th scope="row">
                    <a href={href("tasks", { queue: q.name })}>{q.name}</a>
                    {q.paused && <span class="badge paused">paused</span>}
                  </th>
                  {STATES.map((s) => (
                    <td class="num" data-state={s}>
                      <a href={href("tasks", { queue: q.name, state: s })}>{count(q.counts[s] ?? 0)}</a>
                    </td>
                  ))}
                  <td class="num">
                    {q.busy} / {q.workers}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {queues.data && queues.data.queues.length === 0 && <p class="muted">No queues yet.</p>}
      </Section>

      <Section
        title="Last 15 minutes"
        actions={
          statQueues.length > 1 && (
            <label>
              Queue{" "}
              <select value={shown?.name} onChange={(e) => setChosen(e.currentTarget.value)}>
                {statQueues.map((q) => (
                  <option value={q.name}>{q.name}</option>
                ))}
              </select>
            </label>
          )
        }
      >
        {shown && stats.data ? (
          <div class="charts">
            {(
              [
                ["Processed per second", "", [["succeeded", shown.succeeded, "#2f855a"], ["failed", shown.failed, "#c53030"]]],
                ["Queue wait", " ms", [["p50", shown.wait_p50_ms, "#3182ce"], ["p95", shown.wait_p95_ms, "#805ad5"]]],
                ["Run time", " ms", [["p50", shown.run_p50_ms, "#dd6b20"], ["p95", shown.run_p95_ms, "#b7791f"]]],
              ] as [string, string, [string, (number | null)[], string][]][]
            ).map(([title, unit, series]) => (
              <Chart
                title={`${title} — ${shown.name}`}
                start={stats.data!.start}
                unit={unit}
                series={series.map(([label, values, color]) => ({ label, values, color }))}
              />
            ))}
          </div>
        ) : (
          <p class="muted">No attempts in the window yet.</p>
        )}
      </Section>

      <div class="two">
        <Section title="Nodes">
          <div class="table-wrap">
            <table>
              <Head cols={["Node", "Role", "Busy#", "Queues", "Last seen"]} />
              <tbody>
                {(nodes.data?.nodes ?? []).map((n) => (
                  <tr>
                    <th scope="row">
                      {n.id}
                      {n.self && <span class="badge">this one</span>}
                    </th>
                    <td>{n.role}</td>
                    <td class="num">{n.busy}</td>
                    <td>{n.queues.map((q) => `${q.name} ${q.busy}/${q.workers}`).join(", ") || "—"}</td>
                    <td>
                      <Time at={n.last_seen} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Section>
        <Section title="Open circuits">
          {open.length === 0 ? (
            <p class="muted">None: every host http.request called is answering.</p>
          ) : (
            <ul class="plain">
              {open.map((c) => (
                <li>
                  <strong>{c.target}</strong> {c.state.replace("_", "-")}, next probe in{" "}
                  {Math.ceil(c.retry_in_ms / 1000)} s
                </li>
              ))}
            </ul>
          )}
        </Section>
      </div>
    </div>
  );
}
