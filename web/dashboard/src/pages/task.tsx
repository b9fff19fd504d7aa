// One task: payload and result as formatted JSON, its attempts, timestamps,
// node and trace, a live progress bar fed by the task's event stream, and
// cancel/retry buttons where they apply.
import { useEffect, useState } from "preact/hooks";
import { ApiError, get, post, type Task } from "../api";
import { Head, Json, Progress, Section, StateBadge, Time } from "../components/bits";
import { followTask } from "../events";
import { errorText, local } from "../format";
import { href } from "../router";
import { useUiConfig } from "../ui_config";

const FINAL = ["succeeded", "dead", "cancelled"];

interface AttemptRow {
  attempt: number;
  outcome: string;
  started_at: string | null;
  ended_at: string | null;
  node: string | null;
  error: string;
}

// The past attempts the store kept, then the one running or the one that
// succeeded (the record itself describes that one).
function attempts(t: Task): AttemptRow[] {
  const rows: AttemptRow[] = (t.past_attempts ?? []).map((a) => ({ ...a }));
  if (t.state === "active" || t.state === "succeeded") {
    rows.push({
      attempt: t.attempt,
      outcome: t.state === "active" ? "running" : "succeeded",
      started_at: t.started_at,
      ended_at: t.state === "succeeded" ? t.finished_at : null,
      node: t.node,
      error: "",
    });
  }
  return rows;
}

export function TaskDetail({ id }: { id: string }) {
  const [task, setTask] = useState<Task | null>(null);
  const [missing, setMissing] = useState<string>("");
  const [note, setNote] = useState("");
  const [reload, setReload] = useState(0);
  const config = useUiConfig();

  useEffect(() => {
    let stop = () => {};
    let gone = false;
    setMissing("");
    get<Task>(`/v1/tasks/${encodeURIComponent(id)}`)
      .then((t) => {
        if (gone) return;
        setTask(t);
        if (FINAL.includes(t.state)) return;
        // The stream's entries leave out the payload and the past attempts:
        // keep what we have, and read the task again when an attempt ends.
        let last = t;
        stop = followTask(id, {
          onTask: (u) => {
            const ended = (u.attempt !== last.attempt || u.state !== last.state) && u.state !== "active";
            last = u;
            setTask((old) => ({
              ...old,
              ...u,
              payload: old?.payload ?? u.payload,
              past_attempts: old?.past_attempts,
            }));
            if (ended) {
              void get<Task>(`/v1/tasks/${encodeURIComponent(id)}`).then((full) => {
                // Not over a newer event that came while it was on its way.
                if (!gone) setTask((old) => (old && old.updated_at > full.updated_at ? old : full));
              });
            }
          },
          onDeleted: () => setMissing("This task was deleted."),
        });
      })
      .catch((e) => {
        if (!gone) setMissing(e instanceof ApiError && e.status === 404 ? `No task ${id}.` : errorText(e));
      });
    return () => {
      gone = true;
      stop();
    };
  }, [id, reload]);

  const act = async (action: "cancel" | "retry") => {
    try {
      await post(`/v1/tasks/${encodeURIComponent(id)}/${action}`);
      setNote(action === "cancel" ? "Cancel requested." : "Sent back to pending.");
      setReload((n) => n + 1);
    } catch (e) {
      setNote(`${action} failed: ${errorText(e)}`);
    }
  };

  if (missing) {
    return (
      <div class="page">
        <p class="error">{missing}</p>
        <a href={href("tasks")}>All tasks</a>
      </div>
    );
  }
  if (!task) return <div class="page muted">Loading…</div>;

  const final = FINAL.includes(task.state);
  const traceUrl =
    task.trace_id && config.trace_url ? config.trace_url.replace("{trace_id}", task.trace_id) : null;
  const percent = task.state === "succeeded" ? 100 : task.progress?.percent ?? 0;

  return (
    <div class="page">
      <Section
        title={`Task ${task.id}`}
        actions={
          <div class="actions">
            {!final && (
              <button class="danger" disabled={task.cancel_requested} onClick={() => act("cancel")}>
                {task.cancel_requested ? "Cancelling…" : "Cancel"}
              </button>
            )}
            {(task.state === "dead" || task.state === "cancelled") && (
              <button onClick={() => act("retry")}>Retry</button>
            )}
          </div>
        }
      >
        {note && <p role="status" class="note">{note}</p>}
        <dl class="facts">
          <dt>State</dt>
          <dd>
            <StateBadge state={task.state} />
          </dd>
          <dt>Type</dt>
          <dd>{task.type}</dd>
          <dt>Queue</dt>
          <dd>
            <a href={href("tasks", { queue: task.queue })}>{task.queue}</a>
          </dd>
          <dt>Attempt</dt>
          <dd>
            {task.attempt} of {task.max_attempts}
          </dd>
          <dt>Progress</dt>
          <dd>
            <Progress percent={percent} message={task.progress?.message} />
          </dd>
          <dt>Node</dt>
          <dd>{task.node ?? "—"}</dd>
          <dt>Priority</dt>
          <dd>{task.priority}</dd>
          <dt>Unique key</dt>
          <dd>{task.unique_key ?? "—"}</dd>
          <dt>Group</dt>
          <dd>{task.group_id ?? "—"}</dd>
          <dt>Trace</dt>
          <dd class="mono">
            {traceUrl ? (
              <a href={traceUrl} target="_blank" rel="noopener noreferrer">
                {task.trace_id}
              </a>
            ) : (
              task.trace_id ?? "—"
            )}
          </dd>
          <dt>Request</dt>
          <dd class="mono">{task.request_id ?? "—"}</dd>
        </dl>
      </Section>

      <Section title="Attempts">
        <table>
          <Head cols={["Attempt", "Outcome", "Started", "Finished", "Node", "Error"]} />
          <tbody>
            {attempts(task).map((a) => (
              <tr data-attempt={a.attempt}>
                <td>{a.attempt}</td>
                <td>
                  <StateBadge state={a.outcome} />
                </td>
                <td>
                  <Time at={a.started_at} />
                </td>
                <td>
                  <Time at={a.ended_at} />
                </td>
                <td>{a.node ?? "—"}</td>
                <td class="error-cell" title={a.error}>
                  {a.error}
                </td>
              </tr>
            ))}
            {task.attempt === 0 && (
              <tr>
                <td colSpan={6} class="muted">
                  Not run yet{task.run_at ? `; due ${local(task.run_at)}` : ""}.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      </Section>

      <div class="two">
        <Section title="Payload">
          <Json value={task.payload} label="Payload" />
        </Section>
        <Section title="Result">
          <Json value={task.result} label="Result" />
        </Section>
      </div>

      <Section title="Times">
        <dl class="facts">
          <dt>Created</dt>
          <dd>{local(task.created_at)}</dd>
          <dt>Run at</dt>
          <dd>{local(task.run_at)}</dd>
          <dt>Started</dt>
          <dd>{local(task.started_at)}</dd>
          <dt>Finished</dt>
          <dd>{local(task.finished_at)}</dd>
          <dt>Updated</dt>
          <dd>{local(task.updated_at)}</dd>
          <dt>Timeout</dt>
          <dd>{task.timeout_ms} ms</dd>
        </dl>
      </Section>
    </div>
  );
}
